"""Generation: exemplars (Eq. 15), ideation (Eq. 16), writing, media, cohesion reflection."""
