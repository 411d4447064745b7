"""The seed texts' three-colour example: entropy, cross-entropy and KL in bits."""

import crossentropy as ce

p = [0.10, 0.40, 0.50]  # red, green, blue
q = [0.80, 0.15, 0.05]
print(f"H(P)     = {ce.entropy(p, base=2):.4f} bits")
print(f"H(P, Q)  = {ce.cross_entropy(p, q, base=2):.4f} bits")
print(f"KL(P||Q) = {ce.kl_divergence(p, q, base=2):.4f} bits")
print(f"H(P) + KL(P||Q) = {ce.entropy(p, base=2) + ce.kl_divergence(p, q, base=2):.4f} bits")
