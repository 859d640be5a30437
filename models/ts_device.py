"""Device-independent traces. `torch.jit.trace` records the device of every tensor a
forward creates as a constant: transformers' BERT builds its attention mask with
`torch.arange(..., device=input.device)`, which a trace made on the CPU saves as
`device=torch.device("cpu")` — on CUDA that mask lands on the CPU and the forward
fails (or, traced on cuda:0, fails everywhere else). `make_device_independent`
replaces each such constant with the device of the method's first tensor input
(`prim::device(x)`), in every method graph of the module and its submodules. A
module fresh from `torch.jit.trace` holds those devices in a form its graphs do not
show; saved and loaded again they are constants, so the module is reloaded first.

    python models/ts_device.py FILE.ts...   # checks: exit 1 if a file has such a constant
"""

import io
import sys

import torch


def _blocks(block):
    yield block
    for node in block.nodes():
        for b in node.blocks():
            yield from _blocks(b)


def _device_constants(graph):
    return [
        node
        for block in _blocks(graph)
        for node in block.nodes()
        if node.kind() == "prim::Constant" and node.output().type().kind() == "DeviceObjType"
    ]


def make_device_independent(module):
    """`module` (a ScriptModule) saved and reloaded with every device constant replaced
    by its forward's input device; fails if one is left."""
    buf = io.BytesIO()
    torch.jit.save(module, buf)
    buf.seek(0)
    module = torch.jit.load(buf, map_location="cpu")
    _replace(module)
    left = device_constants(module)
    if left:
        raise SystemExit(f"device constants left in {', '.join(left)}")
    return module


def _replace(module) -> int:
    replaced = 0
    for name, sub in [("", module), *module.named_modules()]:
        try:
            graph = sub.forward.graph
        except (AttributeError, RuntimeError):
            continue
        constants = _device_constants(graph)
        if not constants:
            continue
        tensors = [v for v in list(graph.inputs())[1:] if v.type().kind() == "TensorType"]
        if not tensors:
            raise SystemExit(f"{name or 'the model'}: a device constant but no tensor input to take the device from")
        device = graph.create("prim::device", [tensors[0]])
        device.output().setType(torch._C.DeviceObjType.get())
        graph.insertNode(device)
        device.moveBefore(next(iter(graph.nodes())))
        for node in constants:
            node.output().replaceAllUsesWith(device.output())
            node.destroy()
            replaced += 1
    return replaced


def device_constants(module) -> list[str]:
    """Names of the submodules whose forward still holds a device constant."""
    found = []
    for name, sub in [("", module), *module.named_modules()]:
        try:
            if _device_constants(sub.forward.graph):
                found.append(name or "(top)")
        except (AttributeError, RuntimeError):
            continue
    return found


if __name__ == "__main__":
    bad = 0
    for path in sys.argv[1:]:
        left = device_constants(torch.jit.load(path, map_location="cpu"))
        if left:
            bad += 1
            print(f"{path}: device constants in {', '.join(sorted(set(left)))}")
        else:
            print(f"{path}: device-independent")
    sys.exit(1 if bad else 0)
