"""Run Principal Mapper (principalmapper 1.1.5) on Python 3.11 against the moto emulator.

PMapper 1.1.5 (January 2022) is its last release. Three things stop it from
judging our deployment as it stands; each is patched here at run time, from this
module, without editing site-packages. Import `principalmapper` only through
`load()` (or after calling it): patch 1 must run before PMapper's first import.

1. `collections` ABC aliases (import-time crash on Python >= 3.10).
   `principalmapper/util/case_insensitive_dict.py` does
   `from collections import Mapping, MutableMapping, OrderedDict`; the aliases
   `collections.Mapping`/`MutableMapping` were removed in Python 3.10, so every
   `import principalmapper.*` fails with ImportError. `load()` puts the two
   aliases back on `collections` for the duration of that one import, then removes
   them again, so no other code sees a changed standard library.

2. moto omits `PolicyName` in `GetAccountAuthorizationDetails` (KeyError).
   PMapper reads `Policies[].PolicyName` for every managed policy; moto 5.2.5
   returns `Arn`, `Path`, `DefaultVersionId`, `PolicyVersionList`... but no
   `PolicyName` (real IAM does return it). A botocore `after-call` hook on the IAM
   client that PMapper builds the graph with fills it in from the ARN (the last
   segment of `arn:aws:iam::ACCOUNT:policy[/path]/NAME`), only where it is missing.

3. PMapper 1.1.5 ignores permissions boundaries on roles (wrong answers).
   `gathering.get_nodes_groups_and_policies` reads `PermissionsBoundary` for IAM
   users but builds every role Node with `permissions_boundary=None`, although
   `RoleDetailList[].PermissionsBoundary` is in the same response (moto returns it
   too). Its policy simulation (`local_check_authorization*`) does honour
   `node.permissions_boundary`, so only the gathering is wrong: a role whose
   boundary caps it would be reported as an admin. The wrapped gatherer sets each
   role's boundary to the gathered managed Policy of that ARN, before
   `update_admin_status` runs (which then evaluates admin-ness within the boundary).

The same hook also serves "what-if" graphs (see `GraphOverrides`): it can replace
a managed policy's default document, add an inline policy to a role, remove or
replace a role's boundary, or add a hypothetical role, in the response PMapper
reads, so that a what-if graph is built by PMapper's own code exactly as if IAM
held those documents.
"""

from __future__ import annotations

import collections
import collections.abc
import copy
import datetime as _dt
import hashlib
import importlib
import json
import logging
import sys
from dataclasses import dataclass, field
from typing import Optional

PMAPPER_VERSION = "1.1.5"
_patched = False
log = logging.getLogger("pmapper_compat")


def load():
    """Import principalmapper with all patches applied; returns the package. Idempotent."""
    global _patched
    if _patched:
        return sys.modules["principalmapper"]
    _import_with_collections_aliases()
    import principalmapper
    from principalmapper.graphing import gathering

    if principalmapper.__version__ != PMAPPER_VERSION:
        raise RuntimeError(
            f"pmapper_compat patches principalmapper {PMAPPER_VERSION}, found {principalmapper.__version__}: "
            "re-check every patch before changing the pin in security/requirements.txt"
        )
    original = gathering.get_nodes_groups_and_policies
    if not getattr(original, "_pmapper_compat", False):
        wrapped = _wrap_gatherer(original)
        wrapped._pmapper_compat = True
        gathering.get_nodes_groups_and_policies = wrapped
    _patched = True
    return principalmapper


# --- patch 1 -----------------------------------------------------------------

def _import_with_collections_aliases() -> None:
    added = []
    for name in ("Mapping", "MutableMapping"):
        if not hasattr(collections, name):
            setattr(collections, name, getattr(collections.abc, name))
            added.append(name)
    try:
        importlib.import_module("principalmapper.util.case_insensitive_dict")
    finally:
        for name in added:
            delattr(collections, name)


# --- patches 2 and 3, and what-if overrides ------------------------------------

@dataclass
class GraphOverrides:
    """Changes applied to the IAM data PMapper reads (for what-if graphs). Empty = none."""

    # managed policy ARN -> replacement default-version document
    policy_documents: dict[str, dict] = field(default_factory=dict)
    # role ARN -> list of (inline policy name, document) to add
    role_inline_policies: dict[str, list[tuple[str, dict]]] = field(default_factory=dict)
    # role ARN -> new boundary ARN, or None to remove the boundary
    role_boundaries: dict[str, Optional[str]] = field(default_factory=dict)
    # hypothetical roles: dicts shaped like RoleDetailList entries
    extra_roles: list[dict] = field(default_factory=list)

    def is_empty(self) -> bool:
        return not (self.policy_documents or self.role_inline_policies or self.role_boundaries or self.extra_roles)


_overrides = GraphOverrides()


def set_overrides(overrides: Optional[GraphOverrides]) -> None:
    """Overrides for the next graph builds (None: the IAM data as it is)."""
    global _overrides
    _overrides = overrides or GraphOverrides()


def policy_name_from_arn(arn: str) -> str:
    return arn.rsplit("/", 1)[-1] if "/" in arn else arn.rsplit(":", 1)[-1]


def _fix_authorization_details(parsed: dict, state: dict) -> None:
    """botocore after-call hook: patch 2 (PolicyName), record role boundaries (patch 3), apply overrides.

    `state` lives for one graph build: {"boundaries": {role ARN: boundary ARN}, "extra_roles_added": bool}."""
    for policy in parsed.get("Policies", []):
        if "PolicyName" not in policy and "Arn" in policy:
            policy["PolicyName"] = policy_name_from_arn(policy["Arn"])
        replacement = _overrides.policy_documents.get(policy.get("Arn"))
        if replacement is not None:
            for version in policy.get("PolicyVersionList", []):
                if version.get("IsDefaultVersion"):
                    version["Document"] = copy.deepcopy(replacement)
    roles = parsed.get("RoleDetailList")
    if roles is None:
        return
    if _overrides.extra_roles and not state["extra_roles_added"]:
        # Added once, to the first page: PMapper concatenates the pages.
        roles.extend(copy.deepcopy(_overrides.extra_roles))
        state["extra_roles_added"] = True
    for role in roles:
        arn = role.get("Arn")
        for name, document in _overrides.role_inline_policies.get(arn, []):
            role.setdefault("RolePolicyList", []).append({"PolicyName": name, "PolicyDocument": copy.deepcopy(document)})
        if arn in _overrides.role_boundaries:
            new = _overrides.role_boundaries[arn]
            if new is None:
                role.pop("PermissionsBoundary", None)
            else:
                role["PermissionsBoundary"] = {"PermissionsBoundaryType": "PermissionsBoundaryPolicy", "PermissionsBoundaryArn": new}
        boundary = (role.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn")
        if boundary:
            state["boundaries"][arn] = boundary


def _wrap_gatherer(original):
    def get_nodes_groups_and_policies(iamclient) -> dict:
        state: dict = {"boundaries": {}, "extra_roles_added": False}

        def hook(parsed, model, **_):
            if model.name == "GetAccountAuthorizationDetails":
                _fix_authorization_details(parsed, state)

        # On `after-call.iam`, registered last: after botocore's own after-call.iam
        # handler that decodes the URL-quoted policy documents into dicts (a handler
        # on the more specific event name would run before it).
        event = "after-call.iam"
        iamclient.meta.events.register_last(event, hook, unique_id="pmapper-compat")
        try:
            result = original(iamclient)
        finally:
            iamclient.meta.events.unregister(event, unique_id="pmapper-compat")
        by_arn = {policy.arn: policy for policy in result["policies"]}
        for node in result["nodes"]:
            boundary_arn = state["boundaries"].get(node.arn)
            if ":role/" in node.arn and boundary_arn and node.permissions_boundary is None:
                if boundary_arn not in by_arn:
                    # PMapper raises the same way for a user's unknown boundary.
                    raise ValueError(f"boundary {boundary_arn} of {node.arn} is not among the gathered policies")
                node.permissions_boundary = by_arn[boundary_arn]
        return result

    get_nodes_groups_and_policies.__doc__ = original.__doc__
    return get_nodes_groups_and_policies


# --- building a graph against an endpoint --------------------------------------

# PMapper's edge checkers that matter here: IAM (UpdateAssumeRolePolicy, access
# keys), STS (AssumeRole through trust policies) and Lambda (PassRole +
# CreateFunction, UpdateFunctionCode on existing functions).
SERVICES = ["iam", "sts", "lambda"]
# Every client PMapper's create_graph makes (resource-policy gathering included).
_CLIENTS = ["sts", "iam", "lambda", "s3", "sns", "sqs", "kms", "secretsmanager"]


def session_for(region: str):
    """A botocore session for the emulator. Credentials come from the environment
    (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY), defaulting to moto's `testing`."""
    import os

    import botocore.session

    session = botocore.session.Session()
    session.set_config_variable("region", region)
    if not (os.environ.get("AWS_ACCESS_KEY_ID") and os.environ.get("AWS_SECRET_ACCESS_KEY")):
        session.set_credentials("testing", "testing")
    return session


def build_graph(endpoint: str, region: str, overrides: Optional[GraphOverrides] = None):
    """PMapper's graph of the account behind `endpoint` (one region), with optional what-if overrides.

    The endpoint is passed explicitly to every client PMapper creates (its
    `client_args_map`), so AWS_ENDPOINT_URL is not relied upon and no request can
    leave for real AWS."""
    load()
    from principalmapper.graphing import gathering

    session = session_for(region)
    client_args = {name: {"endpoint_url": endpoint} for name in _CLIENTS}
    set_overrides(overrides)
    try:
        # PMapper logs every edge at INFO; keep its loggers to warnings.
        logging.getLogger("principalmapper").setLevel(logging.WARNING)
        graph = gathering.create_graph(session, SERVICES, region_allow_list=[region], client_args_map=client_args)
    finally:
        set_overrides(None)
    for name in _CLIENTS:
        client = session.create_client(name, region_name=region, **client_args[name])
        assert client.meta.endpoint_url == endpoint, (name, client.meta.endpoint_url)
    return graph


def hypothetical_role(arn: str, trust_principal_arn: str, attached_policy_arns: list[str],
                      boundary_arn: Optional[str]) -> dict:
    """A RoleDetailList entry for a role that does not exist (what-if graphs)."""
    name = arn.rsplit("/", 1)[-1]
    role = {
        "Path": "/",
        "RoleName": name,
        "RoleId": "AROAWHATIF" + hashlib.sha256(arn.encode()).hexdigest()[:11].upper(),
        "Arn": arn,
        "CreateDate": _dt.datetime.now(_dt.timezone.utc),
        "AssumeRolePolicyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"AWS": trust_principal_arn}, "Action": "sts:AssumeRole"}],
        },
        "InstanceProfileList": [],
        "RolePolicyList": [],
        "AttachedManagedPolicies": [
            {"PolicyName": policy_name_from_arn(p), "PolicyArn": p} for p in attached_policy_arns
        ],
        "Tags": [],
    }
    if boundary_arn:
        role["PermissionsBoundary"] = {"PermissionsBoundaryType": "PermissionsBoundaryPolicy", "PermissionsBoundaryArn": boundary_arn}
    return role


if __name__ == "__main__":  # smoke test: python pmapper_compat.py ENDPOINT [REGION]
    g = build_graph(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "us-east-1")
    print(json.dumps({
        "nodes": [n.searchable_name() for n in g.nodes],
        "admins": [n.searchable_name() for n in g.nodes if n.is_admin],
        "edges": [e.describe_edge() for e in g.edges],
        "boundaries": {n.searchable_name(): n.permissions_boundary.arn for n in g.nodes if n.permissions_boundary},
    }, indent=2))
