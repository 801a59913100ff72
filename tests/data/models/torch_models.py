#!/usr/bin/python3
# torch_models.py — the torch.nn twins of models/*.cfg. Run with /usr/bin/python3 (Debian torch) to
# get the output shapes and parameter counts that tests/test_model.c asserts.
import torch, torch.nn as nn
M = {
 'simplecnn': nn.Sequential(nn.Conv2d(1,32,3,padding=1), nn.ReLU(), nn.MaxPool2d(2),
     nn.Conv2d(32,64,3,padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
     nn.Linear(3136,128), nn.ReLU(), nn.Linear(128,10)),
 'cnn': nn.Sequential(nn.Conv2d(1,16,5,padding=2), nn.ReLU(), nn.MaxPool2d(2),
     nn.Conv2d(16,32,5,padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(1568,10)),
 'network': nn.Sequential(nn.Conv2d(1,6,5), nn.ReLU(), nn.MaxPool2d(2),
     nn.Conv2d(6,12,5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
     nn.Linear(192,120), nn.ReLU(), nn.Linear(120,60), nn.ReLU(), nn.Linear(60,10)),
 'network3': nn.Sequential(nn.Conv2d(1,6,5), nn.ReLU(), nn.MaxPool2d(2),
     nn.Conv2d(6,12,5), nn.ReLU(), nn.MaxPool2d(2),
     nn.Conv2d(12,24,2,padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
     nn.Linear(96,120), nn.ReLU(), nn.Linear(120,60), nn.ReLU(), nn.Linear(60,10)),
 'lenet5': nn.Sequential(nn.Conv2d(1,6,5,padding=2), nn.PReLU(), nn.AvgPool2d(2),
     nn.Conv2d(6,16,5), nn.Tanh(), nn.AvgPool2d(2), nn.Flatten(),
     nn.Linear(400,120), nn.ReLU(), nn.Linear(120,84), nn.ReLU(), nn.Linear(84,10)),
}
for name, net in M.items():
    x = torch.zeros(1,1,28,28); shapes = []
    for layer in net:
        x = layer(x); shapes.append(tuple(x.shape[1:]))
    per = [sum(p.numel() for p in l.parameters()) for l in net]
    print(name, len(net), sum(p.numel() for p in net.parameters()))
    print('  ', shapes); print('  ', per)
# broken network from the notes
b = nn.Sequential(nn.Conv2d(1,16,5,padding=2), nn.PReLU(), nn.AvgPool2d(2), nn.Conv2d(16,64,5), nn.Sigmoid(),
    nn.AvgPool2d(2), nn.Conv2d(64,16,5), nn.ReLU(), nn.AvgPool2d(2))
try:
    b(torch.zeros(1,1,28,28))
except Exception as e: print('broken:', e)
