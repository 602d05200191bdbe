from __future__ import annotations

import json

import pytest

from gridmap.cases import default_catalogue, load_catalogue
from gridmap.errors import CaseError

REQUIRED = {
    "噪音扰民": "noise",
    "垃圾清运": "garbage collection",
    "道路破损": "damaged road",
    "违章停车": "illegal parking",
    "邻里纠纷": "neighbour dispute",
    "独居老人求助": "elderly living alone asking for help",
    "漏水停水": "water leak or outage",
    "消防隐患": "fire hazard",
    "群租房": "overcrowded rental",
    "其他": "other",
}


def test_shipped_categories_and_lookups():
    cat = default_catalogue()
    for zh, en in REQUIRED.items():
        c = cat.category(zh)
        assert c.name_en == en
        assert cat.category(c.code) is c and cat.category(en.upper()) is c
        assert c.policy == "12345" and c.urgency in ("urgent", "ordinary")
    assert cat.category("fire").urgency == "urgent"
    assert cat.category("违停").code == "parking"  # alias
    assert abs(sum(c.share for c in cat.categories) - 1.0) < 1e-9


def test_sources_and_aliases():
    cat = default_catalogue()
    assert cat.source_codes == ("hotline", "app", "patrol", "online", "walkin")
    assert cat.source("12345").code == "hotline" and cat.source("热线").code == "hotline"
    assert cat.source("巡查上报").code == "patrol" and cat.source("网上居委会").policy == "357"
    assert cat.source("walk-in").code == "walkin"
    with pytest.raises(CaseError, match="unknown source 'fax'"):
        cat.source("fax")


def test_user_json_merges_over_the_shipped_catalogue(tmp_path):
    path = tmp_path / "cats.json"
    path.write_text(
        json.dumps(
            {
                "categories": [
                    {"code": "noise", "urgency": "urgent"},
                    {
                        "code": "stray_dogs",
                        "name_zh": "流浪犬",
                        "name_en": "stray dogs",
                        "policy": "357",
                        "urgency": "ordinary",
                        "aliases": ["野狗"],
                    },
                ]
            },
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    cat = load_catalogue(path, policies=["12345", "357"])
    assert cat.category("噪音扰民").urgency == "urgent"
    assert cat.category("噪音扰民").name_en == "noise"  # other fields kept
    assert cat.category("野狗").policy == "357" and len(cat.categories) == 11


def test_user_csv_with_bom(tmp_path):
    path = tmp_path / "cats.csv"
    path.write_text(
        "code,name_zh,name_en,policy,urgency,aliases\n"
        "lights,路灯故障,street lights,12345,ordinary,路灯|灯不亮\n",
        encoding="utf-8-sig",
    )
    assert load_catalogue(path).category("灯不亮").code == "lights"


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("code,name_zh\nBad Code,坏\n", r"cats.csv line 2: field 'code' 'Bad Code'"),
        ("code,name_zh,name_en\nnew_one,新,new\n", r"line 2: new category 'new_one' lacks field"),
        ("code,urgency\nnoise,soonish\n", r"line 2: field 'urgency' is 'soonish'"),
        ("code,share\nnoise,2\n", r"line 2: field 'share' is '2'"),
        ("code,colour\nnoise,red\n", r"line 2: unknown field\(s\) \['colour'\]"),
        ("code,aliases\nroad,噪音\n", "name '噪音' is used by both 'noise' and 'road'"),
    ],
)
def test_bad_rows_are_named(tmp_path, text, match):
    path = tmp_path / "cats.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CaseError, match=match):
        load_catalogue(path)


def test_bad_files(tmp_path):
    with pytest.raises(CaseError, match="does not exist"):
        load_catalogue(tmp_path / "none.json")
    bad = tmp_path / "cats.json"
    bad.write_text("{oops", encoding="utf-8")
    with pytest.raises(CaseError, match="invalid JSON at line 1"):
        load_catalogue(bad)
    xlsx = tmp_path / "cats.xlsx"
    xlsx.write_text("x", encoding="utf-8")
    with pytest.raises(CaseError, match="use .json or .csv"):
        load_catalogue(xlsx)
    gbk = tmp_path / "gbk.csv"
    gbk.write_bytes("code,name_zh\nnoise,噪音\n".encode("gbk"))
    with pytest.raises(CaseError, match="not UTF-8"):
        load_catalogue(gbk)
    with pytest.raises(CaseError, match="policy '12345' is not defined"):
        load_catalogue(policies=["357"])
