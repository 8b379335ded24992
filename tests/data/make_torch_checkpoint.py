# Writes tests/data/mlp_torch.safetensors from PyTorch and prints the model's output for a fixed
# input (the numbers in tests/test_checkpoint.cpp). Debian 12 has no safetensors package, so the
# file is written by hand following the format: 8-byte little-endian header length, JSON header,
# raw little-endian data. Run with: /usr/bin/python3 tests/data/make_torch_checkpoint.py
import json, struct
import torch

torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.LayerNorm(4), torch.nn.Linear(4, 2))
with torch.no_grad():  # make LayerNorm's affine parameters non-trivial
    model[2].weight.copy_(torch.tensor([1.5, 0.5, -1.0, 2.0]))
    model[2].bias.copy_(torch.tensor([0.1, -0.2, 0.3, 0.0]))

def save(state, path):
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    codes = {torch.float32: "F32", torch.float64: "F64", torch.int64: "I64"}
    for name, t in state.items():
        data = t.contiguous().numpy().tobytes()
        header[name] = {"dtype": codes[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))

save(model.state_dict(), "mlp_torch.safetensors")
x = torch.tensor([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]])
print(model(x).detach().numpy().tolist())
