# The fashion_cnn example in PyTorch (the same model, data, normalisation, optimizer and batch
# size), to time one epoch on the same machine: /usr/bin/python3 bench/fashion_cnn_pytorch.py THREADS
# (Debian's python3-torch; not needed by the build or the tests).
import gzip, sys, time
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
torch.manual_seed(0)
d = "/usr/share/datasets/fashion-mnist/"
def images(name):
    with gzip.open(d + name) as f:
        return np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28).astype(np.float32) / 255
def labels(name):
    with gzip.open(d + name) as f:
        return np.frombuffer(f.read(), np.uint8, offset=8).astype(np.int64)
x = (torch.from_numpy(images("train-images-idx3-ubyte.gz")) - 0.2860) / 0.3530
y = torch.from_numpy(labels("train-labels-idx1-ubyte.gz"))
xt = (torch.from_numpy(images("t10k-images-idx3-ubyte.gz")) - 0.2860) / 0.3530
yt = torch.from_numpy(labels("t10k-labels-idx1-ubyte.gz"))
model = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
                      nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
                      nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.BatchNorm1d(128), nn.ReLU(), nn.Linear(128, 10))
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
start = time.time()
model.train()
for idx in torch.randperm(len(x)).split(128):
    opt.zero_grad()
    F.cross_entropy(model(x[idx]), y[idx]).backward()
    opt.step()
model.eval()
with torch.no_grad():
    right = sum((model(xt[i:i + 128]).argmax(1) == yt[i:i + 128]).sum().item() for i in range(0, len(xt), 128))
print(f"threads {torch.get_num_threads()}: epoch {time.time() - start:.1f} s, test accuracy {100 * right / len(xt):.1f}%")
