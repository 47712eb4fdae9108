from __future__ import annotations

from pathlib import Path

import yaml

from bot.cli import catalogue_vocab


def test_catalogue_vocabulary_comes_from_the_products(app_db: str, tmp_path: Path) -> None:
    (tmp_path / "data" / "jieba").mkdir(parents=True)
    (tmp_path / "data" / "nlu").mkdir(parents=True)
    catalogue_vocab(root=tmp_path)
    words = (tmp_path / "data" / "jieba" / "catalogue.txt").read_text(encoding="utf-8")
    assert "海军蓝西装外套 2000 n" in words.splitlines()
    assert not any(line.startswith("#") for line in words.splitlines())  # jieba has no comments
    lookup = yaml.safe_load((tmp_path / "data" / "nlu" / "catalogue.yml").read_text())
    names = lookup["nlu"][0]["examples"].split("\n")
    assert lookup["nlu"][0]["lookup"] == "product"
    assert "- 真丝领带" in names and "- navy blazer" in names
