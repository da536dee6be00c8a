"""Node labels and action targets: the one set of rules for where an action may run.

A node's ``labels`` (its configuration) and an action's ``target`` (configuration.json,
generated actions, a task's ``input_data``) are validated here, by the node's config, the
REGISTER message and the application parser alike. A target is kept normalised: only the
keys that restrict something, ``platform`` lower-cased, so the scheduler compares plain
values (see :mod:`litepipeline.manager.placement`).
"""
from __future__ import annotations

import difflib
import re
import uuid
from typing import Any, Optional

MAX_LABELS = 32
MAX_LABEL_TEXT = 63
LABEL_RE = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]{0,62})?")
HOST_RE = re.compile(r"[A-Za-z0-9._:\[\]-]{1,255}")
MAX_PLATFORM = 64
#: target keys: labels plus 0.1.5's ``target_env`` keys (``docker_support`` only as false)
TARGET_KEYS = ("labels", "node_id", "node_ip", "platform", "docker_support")
NO_DOCKER = ("docker_support true cannot be met: LitePipeline runs actions without docker; "
             "remove the key or set it to false")


class BadTarget(ValueError):
    """A label map or a target broke a rule; the message names the key."""


def _label_text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        hint = " (quote it in YAML/JSON)" if isinstance(value, (bool, int, float)) else ""
        raise BadTarget(f"{what} must be a string, got {type(value).__name__} {value!r}{hint}")
    if not LABEL_RE.fullmatch(value):
        raise BadTarget(f"{what} {value[:70]!r} must be 1-{MAX_LABEL_TEXT} letters, digits, '.', '_' or '-', "
                        "starting with a letter or digit")
    return value


def check_labels(value: Any, what: str = "labels") -> dict:
    """A map of label name -> value, both short plain strings; at most ``MAX_LABELS``."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadTarget(f"{what} must be a map of name: value, got {type(value).__name__}")
    if len(value) > MAX_LABELS:
        raise BadTarget(f"{what} has {len(value)} entries, more than {MAX_LABELS}")
    out = {}
    for key, item in value.items():
        name = _label_text(key, f"{what} name")
        out[name] = _label_text(item, f"{what}.{name}")
    return out


def _hint(key: Any) -> str:
    close = difflib.get_close_matches(str(key), TARGET_KEYS, n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else f" (known keys: {', '.join(TARGET_KEYS)})"


def parse_target(raw: Any, what: str = "target") -> Optional[dict]:
    """Validate a target (``labels``, ``node_id``, ``node_ip``, ``platform``,
    ``docker_support``) into its normal form; None when it restricts nothing."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise BadTarget(f"{what} must be an object like {{\"labels\": {{\"gpu\": \"a100\"}}}}, "
                        f"got {type(raw).__name__}")
    out: dict = {}
    for key, value in raw.items():
        if key not in TARGET_KEYS:
            raise BadTarget(f"{what} has unknown key {str(key)[:60]!r}{_hint(key)}")
        if value is None:
            continue
        if key == "labels":
            labels = check_labels(value, f"{what}.labels")
            if labels:
                out["labels"] = labels
        elif key == "node_id":
            if not isinstance(value, str) or not _is_uuid(value):
                raise BadTarget(f"{what}.node_id must be a node id (a uuid), got {str(value)[:60]!r}")
            out["node_id"] = value.lower()
        elif key == "node_ip":
            if not isinstance(value, str) or not HOST_RE.fullmatch(value):
                raise BadTarget(f"{what}.node_ip must be a host address, got {str(value)[:60]!r}")
            out["node_ip"] = value
        elif key == "platform":
            if not isinstance(value, str) or not value.strip() or len(value) > MAX_PLATFORM:
                raise BadTarget(f"{what}.platform must be a machine name like \"x86_64\", got {str(value)[:60]!r}")
            out["platform"] = value.strip().lower()
        elif key == "docker_support":
            if not isinstance(value, bool):
                raise BadTarget(f"{what}.docker_support must be true or false, got {value!r}")
            if value:
                raise BadTarget(f"{what}: {NO_DOCKER}")
    return out or None


def _is_uuid(value: str) -> bool:
    try:
        return len(value) == 36 and str(uuid.UUID(value)) == value.lower()
    except ValueError:
        return False


def merge_targets(base: Optional[dict], extra: Optional[dict]) -> Optional[dict]:
    """``extra`` over ``base``, key by key (labels label by label): a task's input wins."""
    if not extra:
        return base
    if not base:
        return dict(extra)
    out = {**base, **extra}
    if "labels" in base and "labels" in extra:
        out["labels"] = {**base["labels"], **extra["labels"]}
    return out


def describe(target: dict) -> str:
    """A target in words: ``labels gpu=a100, zone=b, platform x86_64``."""
    parts = []
    labels = target.get("labels")
    if labels:
        parts.append("labels " + ", ".join(f"{k}={v}" for k, v in labels.items()))
    parts.extend(f"{key} {target[key]}" for key in ("node_id", "node_ip", "platform") if key in target)
    return ", ".join(parts)
