"""The checked-in type stub names exactly what the native module exports."""

import ast
import inspect
import pathlib

import pocaflow as pf
from pocaflow import _pocaflow

STUB = pathlib.Path(pf.__file__).with_name("_pocaflow.pyi")
HELPERS = {
    "DTypeLike",
    "DeviceLike",
    "ArrayLike",
    "ShapeLike",
    "Scalar",
    "Index",
    "AxisLike",
    "_NN",
}


def stub_names() -> set:
    tree = ast.parse(STUB.read_text())
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
            names.add(node.name)
        elif isinstance(node, ast.AnnAssign):
            names.add(node.target.id)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets)
    return names - HELPERS


def test_stub_matches_module():
    exported = {n for n in dir(_pocaflow) if not n.startswith("_")} | {"__version__"}
    assert stub_names() == exported


def test_stub_lists_every_tensor_method():
    tree = ast.parse(STUB.read_text())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Tensor")
    stubbed = {n.name for n in cls.body if isinstance(n, ast.FunctionDef)}
    public = {n for n in dir(pf.Tensor) if not n.startswith("_")}
    assert public <= stubbed, public - stubbed


def _stub_params(fn: ast.FunctionDef):
    a = fn.args
    out = [x.arg for x in a.posonlyargs + a.args]
    if a.vararg:
        out.append("*" + a.vararg.arg)
    out += [x.arg for x in a.kwonlyargs]
    return [x for x in out if x != "self"]


def _native_params(obj):
    try:
        sig = inspect.signature(obj)
    except (ValueError, TypeError):
        return None
    kinds = inspect.Parameter
    return [
        ("*" + p.name if p.kind == kinds.VAR_POSITIONAL else p.name)
        for p in sig.parameters.values()
        if p.name != "self"
    ]


def test_stub_parameters_match_the_native_signatures():
    tree = ast.parse(STUB.read_text())
    wrong = []

    def compare(qualname, fn, obj):
        got = _native_params(obj)
        if got is not None and got != _stub_params(fn):
            wrong.append((qualname, _stub_params(fn), got))

    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and hasattr(_pocaflow, node.name):
            compare(node.name, node, getattr(_pocaflow, node.name))
        # The stub class `_NN` describes the native submodule `nn`.
        native = {"_NN": "nn"}.get(getattr(node, "name", None), getattr(node, "name", None))
        if isinstance(node, ast.ClassDef) and hasattr(_pocaflow, native):
            cls = getattr(_pocaflow, native)
            for fn in node.body:
                dunder = fn.name.startswith("__") if isinstance(fn, ast.FunctionDef) else True
                static = [
                    d
                    for d in getattr(fn, "decorator_list", ())
                    if getattr(d, "id", "") != "staticmethod"
                ]
                if not dunder and hasattr(cls, fn.name) and not static:
                    compare(f"{node.name}.{fn.name}", fn, getattr(cls, fn.name))
    assert not wrong, wrong
