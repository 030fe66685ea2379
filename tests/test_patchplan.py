"""hooks.patchplan: JSON Pointer escaping and guarded op builders."""

from __future__ import annotations

import copy

import jsonpatch
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hooks.patchplan import PlannedPatch, plan_fields, pointer, set_ops
from tests import flux_objects as flux

SUBSTITUTE = ["spec", "postBuild", "substitute"]


def kustomization(**spec) -> dict:
    """A Kustomization as kustomize-controller left it (Ready for 1.0.0), with `spec` fields set."""
    obj = flux.ready(flux.kustomization("app"), "1.0.0")
    obj["spec"].update(spec)
    return obj


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        ([], ""),
        (["spec", "ref", "tag"], "/spec/ref/tag"),
        (
            ["metadata", "annotations", "rollout.kuberik.com/force-deploy"],
            "/metadata/annotations/rollout.kuberik.com~1force-deploy",
        ),
        (["a~b"], "/a~0b"),
        (["~1"], "/~01"),  # "~" is escaped first, so a literal "~1" stays distinguishable from "/"
        (["/~"], "/~1~0"),
        ([""], "/"),
    ],
)
def test_pointer_escapes_tilde_and_slash(parts, expected):
    assert pointer(parts) == expected
    if parts:
        # The escaped pointer resolves to the same key in a real JSON Pointer implementation.
        doc: dict = {}
        node = doc
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = "found"
        assert jsonpatch.JsonPointer(expected).resolve(doc) == "found"


def test_set_ops_existing_path_tests_old_value_then_replaces():
    obj = {"spec": {"ref": {"tag": "1.0.0"}, "url": "oci://registry/app"}}
    assert set_ops(obj, ["spec", "ref", "tag"], "1.1.0") == [
        {"op": "test", "path": "/spec/ref/tag", "value": "1.0.0"},
        {"op": "replace", "path": "/spec/ref/tag", "value": "1.1.0"},
    ]


def test_set_ops_missing_leaf_tests_parent_then_adds_leaf():
    obj = kustomization(postBuild={"substitute": {"OTHER": "x"}})
    assert set_ops(obj, [*SUBSTITUTE, "APP_VERSION"], "2.0.0") == [
        {"op": "test", "path": "/spec/postBuild/substitute", "value": {"OTHER": "x"}},
        {"op": "add", "path": "/spec/postBuild/substitute/APP_VERSION", "value": "2.0.0"},
    ]


def test_set_ops_missing_subtree_tests_nearest_parent_then_adds_subtree():
    obj = kustomization()
    ops = set_ops(obj, [*SUBSTITUTE, "APP_VERSION"], "2.0.0")
    assert ops == [
        {"op": "test", "path": "/spec", "value": obj["spec"]},
        {"op": "add", "path": "/spec/postBuild", "value": {"substitute": {"APP_VERSION": "2.0.0"}}},
    ]
    patched = jsonpatch.apply_patch(obj, ops)
    assert patched["spec"]["postBuild"] == {"substitute": {"APP_VERSION": "2.0.0"}}
    assert "postBuild" not in obj["spec"]  # the observed object is not mutated


def test_set_ops_test_fails_when_the_object_changed():
    observed = {"spec": {"ref": {"tag": "1.0.0"}}}
    ops = set_ops(observed, ["spec", "ref", "tag"], "1.1.0")
    changed = {"spec": {"ref": {"tag": "1.0.5"}}}
    with pytest.raises(jsonpatch.JsonPatchTestFailed):
        jsonpatch.apply_patch(changed, ops)


def test_set_ops_empty_path_is_rejected():
    with pytest.raises(ValueError):
        set_ops({}, [], "x")


def test_plan_fields_sequences_ops_so_later_tests_see_earlier_adds():
    obj = kustomization()
    original = copy.deepcopy(obj)
    ops = plan_fields(obj, [([*SUBSTITUTE, "A"], "1"), ([*SUBSTITUTE, "B"], "2")])
    assert ops == [
        {"op": "test", "path": "/spec", "value": original["spec"]},
        {"op": "add", "path": "/spec/postBuild", "value": {"substitute": {"A": "1"}}},
        {"op": "test", "path": "/spec/postBuild/substitute", "value": {"A": "1"}},
        {"op": "add", "path": "/spec/postBuild/substitute/B", "value": "2"},
    ]
    assert obj == original
    assert jsonpatch.apply_patch(obj, ops)["spec"]["postBuild"]["substitute"] == {"A": "1", "B": "2"}


def test_plan_fields_replace_and_add_in_one_object():
    obj = kustomization(postBuild={"substitute": {"A": "0", "KEEP": "k"}})
    ops = plan_fields(obj, [([*SUBSTITUTE, "A"], "1"), ([*SUBSTITUTE, "B"], "2")])
    assert [op["op"] for op in ops] == ["test", "replace", "test", "add"]
    assert ops[2] == {"op": "test", "path": "/spec/postBuild/substitute", "value": {"A": "1", "KEEP": "k"}}
    assert jsonpatch.apply_patch(obj, ops)["spec"]["postBuild"]["substitute"] == {
        "A": "1",
        "B": "2",
        "KEEP": "k",
    }


def test_planned_patch_rest_paths():
    assert (
        PlannedPatch("OCIRepository", "apps", "web", ()).path
        == "/apis/source.toolkit.fluxcd.io/v1/namespaces/apps/ocirepositories/web"
    )
    assert (
        PlannedPatch("Kustomization", "apps", "web", ()).path
        == "/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/apps/kustomizations/web"
    )
    with pytest.raises(KeyError):  # the Rollout is never patched (docs/targets.md)
        _ = PlannedPatch("Rollout", "apps", "web", ()).path


keys = st.text(alphabet="ab~/.", min_size=1, max_size=3)
leaves = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=3))
trees = st.recursive(leaves, lambda children: st.dictionaries(keys, children, max_size=3), max_leaves=8)


@settings(max_examples=150, deadline=None)
@given(
    obj=st.dictionaries(keys, trees, max_size=3), parts=st.lists(keys, min_size=1, max_size=4), value=leaves
)
def test_set_ops_sets_exactly_the_field(obj, parts, value):
    """Whenever the path can hold the value (every existing node on it is an object), the
    ops apply to the observed object and change only that field."""
    node = obj
    for part in parts[:-1]:
        if not isinstance(node, dict) or part not in node:
            break
        node = node[part]
    if not isinstance(node, dict):
        return  # a scalar sits on the path: the API server would reject the add, as it must
    before = copy.deepcopy(obj)
    ops = set_ops(obj, parts, value)
    assert ops[0]["op"] == "test"
    patched = jsonpatch.apply_patch(obj, ops)
    assert obj == before
    target = patched
    for part in parts:
        target = target[part]
    assert target == value
    # Every difference lies on the target's own branch: nothing beside it changed.
    target_path = pointer(parts)
    for op in jsonpatch.make_patch(before, patched):
        path = op["path"]
        assert path == target_path or target_path.startswith(path + "/") or path.startswith(target_path + "/")
