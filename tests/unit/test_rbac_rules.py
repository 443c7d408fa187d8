"""The permission check asks one SelfSubjectRulesReview and only what it does not show allowed
one SelfSubjectAccessReview each (all of them when the rules list is incomplete)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from innerloop.core.errors import ClusterError
from innerloop.core.targets import WorkloadRef
from innerloop.k8s import rbac
from innerloop.k8s.rbac import Permission, intercept_permissions, listed_allowed, rule_allows

PORTFORWARD: Permission = ("create", "pods/portforward", "")
UPDATE_DEPLOY: Permission = ("update", "deployments", "apps")


@pytest.mark.parametrize(("rule", "permission", "allowed"), [
    ({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}, PORTFORWARD, True),
    ({"verbs": ["create"], "apiGroups": [""], "resources": ["pods/portforward"]}, PORTFORWARD,
     True),
    ({"verbs": ["create"], "apiGroups": [""], "resources": ["pods"]}, PORTFORWARD, False),
    ({"verbs": ["create"], "apiGroups": [""], "resources": ["*/portforward"]}, PORTFORWARD, True),
    ({"verbs": ["get"], "apiGroups": [""], "resources": ["pods/portforward"]}, PORTFORWARD, False),
    ({"verbs": ["update"], "apiGroups": [""], "resources": ["deployments"]}, UPDATE_DEPLOY, False),
    ({"verbs": ["update", "get"], "apiGroups": ["apps"], "resources": ["deployments"]},
     UPDATE_DEPLOY, True),
    ({"verbs": ["update"], "apiGroups": ["apps"], "resources": ["deployments"],
      "resourceNames": ["orders"]}, UPDATE_DEPLOY, False),
    ({"verbs": ["update"], "apiGroups": ["apps"]}, UPDATE_DEPLOY, False),
])
def test_a_rule_grants_a_permission_as_rbac_matches_it(
        rule: dict[str, Any], permission: Permission, allowed: bool) -> None:
    assert rule_allows(rule, permission) is allowed


def test_an_incomplete_rules_list_shows_nothing_allowed() -> None:
    review = {"status": {"incomplete": True,
                         "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"],
                                            "resources": ["*"]}]}}
    assert listed_allowed(review, [PORTFORWARD, UPDATE_DEPLOY]) == [False, False]


class FakeApi:
    """Answers the two reviews: `rules` for the rules review (or a refusal), `allowed` for
    the access reviews; records which access reviews were asked."""

    def __init__(self, rules: list[dict[str, Any]] | None, allowed: set[Permission],
                 incomplete: bool = False) -> None:
        self.rules, self.allowed, self.incomplete = rules, allowed, incomplete
        self.asked: list[Permission] = []

    async def call(self, method: str, path: str, doing: str, query: object = (),
                   body: Any = None) -> Any:
        assert method == "POST"
        if path.endswith("selfsubjectrulesreviews"):
            if self.rules is None:
                raise ClusterError("forbidden")
            return {"status": {"resourceRules": self.rules, "incomplete": self.incomplete}}
        attrs = body["spec"]["resourceAttributes"]
        resource = attrs["resource"] + (f"/{attrs['subresource']}" if attrs["subresource"] else "")
        need = (attrs["verb"], resource, attrs["group"])
        self.asked.append(need)
        return {"status": {"allowed": need in self.allowed}}


NEEDS = intercept_permissions(WorkloadRef("Deployment", "orders", "shop"), False)
ADMIN = [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}]


def check(api: FakeApi) -> None:
    asyncio.run(rbac.check_permissions(api, "shop", NEEDS))  # type: ignore[arg-type]


def test_rules_that_allow_everything_need_no_access_review() -> None:
    api = FakeApi(ADMIN, set())
    check(api)
    assert api.asked == []


def test_only_what_the_rules_do_not_show_is_asked_and_its_answer_counts() -> None:
    rules = [{"verbs": ["*"], "apiGroups": ["", "apps"],  # no subresource
              "resources": ["services", "pods", "configmaps", "deployments"]}]
    api = FakeApi(rules, {("get", "pods/portforward", "")})
    with pytest.raises(ClusterError, match=r"may not create pods/portforward in namespace 'shop'"):
        check(api)
    assert api.asked == [("get", "pods/portforward", ""), PORTFORWARD]


@pytest.mark.parametrize("api", [FakeApi(ADMIN, set(NEEDS), incomplete=True),
                                 FakeApi(None, set(NEEDS))],
                         ids=["incomplete rules", "rules review refused"])
def test_without_a_complete_rules_list_every_permission_is_asked(api: FakeApi) -> None:
    check(api)
    assert sorted(api.asked) == sorted(NEEDS)
