"""The selection in the URL's query parameters, so a copied link reopens the same view.

    ?model=charlm&method=rtn&bits=3&group_size=64&head=0&include=blocks&codec=zstd

    model     a built-in model's name; with src=server, a file of the server's weights folder (its relative path)
    src       where the model comes from: preset (left out), server, or upload (an upload cannot be restored: the
              link says only that the model was the user's own file)
    method    a method of the registry; then each option that differs from the method's default, by its name,
              its value as the CLI writes it (a switch is 1 or 0)
    head      0 keeps the output head FP16; emb 1 quantizes embeddings; include / exclude are the policy's
              regexes (each written only where it differs from the default policy)
    codec     zstd (none is left out)

`encode` and `decode` are pure. The page writes the URL on every run (`publish`) and reads it once, at the start of a
fresh session (`restore`), before the widgets are drawn: a value read from the link becomes the widget's initial
value. A parameter that is unknown or holds a bad value is left out, with one small warning naming it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import streamlit as st

from qcore import METHODS, Policy, QcoreError, get_method
from qcore.api.specs import Options
from qcore.methods.registry import Option
from ui.i18n import t

MODEL, SOURCE, METHOD, HEAD, EMB, INCLUDE, EXCLUDE, CODEC = (
    "model", "src", "method", "head", "emb", "include", "exclude", "codec",
)  # fmt: skip
RESERVED = (MODEL, SOURCE, METHOD, HEAD, EMB, INCLUDE, EXCLUDE, CODEC)  # a method option may not take these names
POLICY_KEYS = {"pol_head": True, "pol_emb": False, "pol_include": "", "pol_exclude": ""}  # = models.POLICY_DEFAULTS
MAX_VALUE = 500  # characters: a longer value is refused (no regex or name needs more)
READ_KEY, NOTES_KEY, FIRST_KEY = "url_read", "url_notes", "url_first"  # session state of this module
TRUE, FALSE = ("1", "true", "on", "yes"), ("0", "false", "off", "no")


@dataclass
class Restored:
    """What a link asks for: session-state values for the sidebar's and the policy's widgets (widget key -> value),
    and why any parameter was left out (a catalog key with its fields, translated where it is shown)."""

    values: dict[str, Any] = field(default_factory=dict)
    notes: list[tuple[str, dict[str, str]]] = field(default_factory=list)


def encode(
    source: str, model: str, method: str, options: Options, policy: Mapping[str, Any], codec: str = "none"
) -> dict[str, str]:
    """The query parameters of a selection. `model`: a preset's name or a server file's relative path (ignored for
    an upload); `options`: the sidebar's (only those that differ from the method's defaults are written);
    `policy`: the Quantize page's controls (pol_head, pol_emb, pol_include, pol_exclude)."""
    out = {SOURCE: source} if source in ("server", "upload") else {}
    if source != "upload" and model:
        out[MODEL] = model
    out[METHOD] = method
    defaults = {o.name: o.default for o in get_method(method).options() if not o.fixed} if method in METHODS else {}
    for name, value in options:
        if name in defaults and value != defaults[name]:
            out[name] = value_text(value)
    if bool(policy.get("pol_head", True)) is not True:
        out[HEAD] = "0"
    if bool(policy.get("pol_emb", False)):
        out[EMB] = "1"
    for key, param in (("pol_include", INCLUDE), ("pol_exclude", EXCLUDE)):
        if str(policy.get(key) or "").strip():
            out[param] = str(policy[key]).strip()
    if codec == "zstd":
        out[CODEC] = codec
    return out


def value_text(value: Any) -> str:
    """An option's value as the link writes it: a switch as 1 or 0, a float as Python's repr (round-trips)."""
    if isinstance(value, bool):
        return "1" if value else "0"
    return repr(value) if isinstance(value, float) else str(value)


def decode(params: Mapping[str, Any], presets: Sequence[str], server: Sequence[str] = ()) -> Restored:
    """The widget values a link asks for. `presets`: the built-in model names; `server`: the server folder's files
    (empty when it is off). Never raises: each bad parameter is left out with a note."""
    p = {str(k): last(v) for k, v in params.items()}
    out = Restored()
    bad = lambda name: out.notes.append(("url_bad", {"param": name, "value": p[name][:60]}))  # noqa: E731
    for name in [k for k, v in p.items() if len(v) > MAX_VALUE]:
        out.notes.append(("url_too_long", {"param": name}))
        del p[name]
    _model(p, presets, server, out, bad)
    method = p.get(METHOD)
    if method is not None and method not in METHODS:
        bad(METHOD)
        method = None
    if method is not None:
        out.values["method"] = method
    _options(p, method, out, bad)
    _policy(p, out, bad)
    if CODEC in p:
        if p[CODEC] in ("none", "zstd"):
            out.values["q_codec"] = p[CODEC]
        else:
            bad(CODEC)
    return out


def last(value: Any) -> str:
    """A parameter given twice counts once, as its last value (as st.query_params reads it)."""
    if isinstance(value, list | tuple):
        return str(value[-1]) if value else ""
    return str(value)


def _model(p: dict[str, str], presets: Sequence[str], server: Sequence[str], out: Restored, bad) -> None:
    source = p.get(SOURCE, "preset")
    model = p.get(MODEL)
    if source == "upload":
        out.values["source"] = "upload"
        out.notes.append(("url_upload", {}))
    elif source == "server":
        if model in server:
            out.values.update(source="server", server_file=model)
        elif model is not None:
            out.notes.append(("url_no_server", {"name": model[:60]}))
    elif source != "preset":
        bad(SOURCE)
    elif model is not None:
        if model in presets:
            out.values.update(source="preset", preset=model)
        else:
            out.notes.append(("url_no_model", {"name": model[:60]}))


def _options(p: dict[str, str], method: str | None, out: Restored, bad) -> None:
    """Each option parameter, typed by the registry (only the method's own, settable options)."""
    names = [k for k in p if k not in RESERVED]
    if not names:
        return
    if method is None:
        out.notes.append(("url_no_method", {"params": ", ".join(names)[:120]}))
        return
    opts = {o.name: o for o in get_method(method).options() if not o.fixed}
    parsed = {}
    for name in names:
        if name not in opts:
            out.notes.append(("url_unknown", {"param": name[:60], "method": method}))
            continue
        value = parse_option(opts[name], p[name])
        if value is None:
            bad(name)
        else:
            parsed[name] = value
    try:
        get_method(method).make_config(**parsed)
    except QcoreError as e:  # each value fits its type, but not together (or not the config's own range)
        out.notes.append(("url_options", {"msg": str(e)}))
        return
    out.values.update({f"opt_{method}_{k}": v for k, v in parsed.items()})  # = sidebar.option_key


def parse_option(opt: Option, text: str) -> Any:
    """`text` as a value of `opt` (the type of its default, one of its choices where it lists them), or None."""
    default = opt.default
    try:
        if isinstance(default, bool):
            value: Any = True if text.lower() in TRUE else False if text.lower() in FALSE else None
        elif isinstance(default, int):
            value = int(text)
            value = value if value >= 0 else None  # the sidebar's number inputs start at 0
        elif isinstance(default, float):
            value = float(text)
            value = value if math.isfinite(value) else None
        else:
            value = text
    except ValueError:
        return None
    if value is not None and opt.choices and value not in opt.choices:
        return None
    return value


def _policy(p: dict[str, str], out: Restored, bad) -> None:
    for param, key in ((HEAD, "pol_head"), (EMB, "pol_emb")):
        if param in p:
            flag = p[param].lower()
            if flag in TRUE or flag in FALSE:
                out.values[key] = flag in TRUE
            else:
                bad(param)
    for param, key in ((INCLUDE, "pol_include"), (EXCLUDE, "pol_exclude")):
        if param in p:
            try:
                Policy(include=p[param])
            except QcoreError:
                bad(param)
                continue
            out.values[key] = p[param]


# ---- Streamlit glue: read once per session, write on every run --------------------------------------------


def restore(presets: Sequence[str], server: Sequence[str]) -> None:
    """At the first run of a session, before any widget is drawn: preset the widgets from the link."""
    if st.session_state.get(READ_KEY):
        return
    st.session_state[READ_KEY] = True
    try:
        found = decode(st.query_params.to_dict(), presets, server)
    except Exception as e:  # a bug here must not cost the user the app: say the link was not read
        found = Restored(notes=[("url_failed", {"msg": f"{type(e).__name__}: {e}"})])
    for key, value in found.values.items():
        st.session_state[key] = value
    st.session_state[NOTES_KEY] = found.notes


def publish(source: str, model: str, method: str, options: Options, notes=None) -> None:
    """Write the selection to the URL when it changed. The link's notes (drawn in `notes`, show_notes' holder) go
    once the selection first changes from what the link opened."""
    state = st.session_state
    policy = {k: state.get(k, d) for k, d in POLICY_KEYS.items()}
    params = encode(source, model, method, options, policy, str(state.get("q_codec", "none")))
    if state.get(NOTES_KEY):
        if FIRST_KEY not in state:
            state[FIRST_KEY] = params
        elif state[FIRST_KEY] != params:
            state[NOTES_KEY] = []
            if notes is not None:
                notes.empty()
    if st.query_params.to_dict() != params:
        st.query_params.from_dict(params)


def show_notes():
    """Why parts of the link this session opened were left out: one small warning, in the chosen language. Returns
    its holder, for publish to take it away."""
    holder = st.empty()
    found = st.session_state.get(NOTES_KEY) or []
    if found:
        holder.warning("\n\n".join(t(key, **fields) for key, fields in found), icon=":material/link_off:")
    return holder
