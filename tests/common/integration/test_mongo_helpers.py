"""MongoDB helpers against the real database."""

from __future__ import annotations

from typing import Any

import pytest

from turnout_common.mongo import find_in_org

pytestmark = pytest.mark.integration


def test_find_in_org_answers_like_a_filter_on_id_and_org(mongo_client: Any, unique: str) -> None:
    things = mongo_client[f"t_find_in_org_{unique}"]["things"]
    things.insert_many([{"_id": "a", "org_id": "o1", "n": 1}, {"_id": "b", "org_id": "o2"}, {"_id": "c"}])
    for doc_id in ("a", "b", "c", "missing"):
        for org_id in ("o1", "o2"):
            assert find_in_org(things, doc_id, org_id) == things.find_one({"_id": doc_id, "org_id": org_id})
    assert find_in_org(things, "a", "o1") == {"_id": "a", "org_id": "o1", "n": 1}
