"""MovieLens-100K from the copy inside the PyPI package ``recbole`` (read as files, not imported),
in its RecBole layout and converted by the test to the original GroupLens u.data/u.item layout."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd
import pytest

from tailormind.data.importers import import_ml100k
from tailormind.errors import DataError

GENRES = ["unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
          "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
          "Romance", "Sci-Fi", "Thriller", "War", "Western"]


@pytest.fixture(scope="module")
def recbole_ml100k() -> Path:
    spec = importlib.util.find_spec("recbole")  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("the recbole package (installed --no-deps by the Makefile) is missing")
    root = Path(next(iter(spec.submodule_search_locations))) / "dataset_example" / "ml-100k"
    assert (root / "ml-100k.inter").is_file()
    return root


def test_recbole_layout(recbole_ml100k: Path) -> None:
    bundle = import_ml100k(recbole_ml100k)
    assert bundle.users.num_rows == 943
    assert bundle.items.num_rows == 1682
    assert bundle.interactions.num_rows == 100000
    assert bundle.report["duplicate_interactions_merged"] == 0
    item1 = bundle.items.slice(0, 1).to_pylist()[0]
    assert item1["title"] == "Toy Story (1995)"
    assert item1["tags"] == ["animation", "children's", "comedy"]
    user1 = [u for u in bundle.users.to_pylist() if u["user_id"] == "1"][0]
    assert user1 == {"user_id": "1", "age": "24", "gender": "M", "occupation": "technician", "zip_code": "85711"}


def test_grouplens_layout(recbole_ml100k: Path, tmp_path: Path) -> None:
    inter = pd.read_csv(recbole_ml100k / "ml-100k.inter", sep="\t", dtype=str)
    item = pd.read_csv(recbole_ml100k / "ml-100k.item", sep="\t", dtype=str, keep_default_na=False)
    inter.to_csv(tmp_path / "u.data", sep="\t", header=False, index=False)
    with open(tmp_path / "u.item", "w", encoding="latin-1", errors="replace") as f:
        for _, row in item.iterrows():
            flags = ["1" if g in row["class:token_seq"].split() else "0" for g in GENRES]
            date = f"01-Jan-{row['release_year:token']}" if row["release_year:token"] else ""
            title = f"{row['movie_title:token_seq']} ({row['release_year:token']})"
            f.write("|".join([row["item_id:token"], title, date, "", "http://x", *flags]) + "\n")
    (tmp_path / "u.genre").write_text("".join(f"{g}|{i}\n" for i, g in enumerate(GENRES)), encoding="latin-1")
    bundle = import_ml100k(tmp_path)
    assert (bundle.users.num_rows, bundle.items.num_rows, bundle.interactions.num_rows) == (943, 1682, 100000)
    item1 = bundle.items.slice(0, 1).to_pylist()[0]
    assert item1["tags"] == ["animation", "children's", "comedy"]
    assert item1["created_at"].year == 1995


def test_not_an_ml100k_directory(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not an ml-100k directory"):
        import_ml100k(tmp_path)
