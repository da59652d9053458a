"""The checked-in type stub names exactly what the native module exports."""

import ast
import pathlib

import pocaflow as pf
from pocaflow import _pocaflow

STUB = pathlib.Path(pf.__file__).with_name("_pocaflow.pyi")
HELPERS = {"DTypeLike", "DeviceLike", "ArrayLike", "ShapeLike", "Scalar", "Index"}


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
