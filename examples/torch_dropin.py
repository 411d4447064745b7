"""Replace torch.nn.CrossEntropyLoss with crossentropy's drop-in: same loss, same gradients."""

import torch

from crossentropy.torch import CrossEntropyLoss

torch.manual_seed(0)
model = torch.nn.Linear(8, 4)
x, target = torch.randn(32, 8), torch.randint(0, 4, (32,))
loss = CrossEntropyLoss(label_smoothing=0.1)(model(x), target)
loss.backward()
reference = torch.nn.CrossEntropyLoss(label_smoothing=0.1)(model(x), target)
print(f"crossentropy {loss.item():.6f}  torch {reference.item():.6f}")
