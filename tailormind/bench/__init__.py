"""TailorBench: metrics and evaluation shared by every stage."""
