"""The per-row divergences between two models' logits in plain torch operations (private).

The same two functions as the fused kernels (:mod:`.kl_cpu` for the C
kernel, :mod:`.triton_kl` for Triton), written with torch operations: what
the distillation losses run where no fused kernel applies (another device,
kernels not built), and what the C path computes a batch holding invalid rows
with. For a pair of rows, with ``T`` the temperature and
``lp = log_softmax(x / T)`` each side's log-probabilities (``p = exp(lp)``):

- ``"forward_kl"``: ``KL(P_t || P_s) = sum p_t (lp_t - lp_s)``; its auxiliary
  value is the teacher's entropy ``H(P_t)``;
- ``"reverse_kl"``: ``KL(P_s || P_t) = sum p_s (lp_s - lp_t)`` (auxiliary: the
  same value);
- ``"jsd"``: ``beta KL(P_t || M) + (1 - beta) KL(P_s || M)`` with
  ``M = beta P_t + (1 - beta) P_s`` (auxiliary: ``KL(P_s || M)``); ``beta`` 0
  or 1 gives 0 exactly.

Terms whose probability is 0 count 0. The log-ratios against the mixture are
formed from ``d = lp_s - lp_t`` with ``log1p`` and ``expm1`` (see
:func:`jsd_ratios`), so they keep their accuracy where the two distributions
nearly agree. A row with a NaN or ``+inf`` logit, or with ``-inf`` logits
only, gets NaN. The gradient with respect to the student's logits of
``coef_i`` times row ``i``'s value is ``coef k (p_s - p_t)`` (forward),
``coef k p_s (lp_s - lp_t - value)`` (reverse; NaN where the value is
``+inf``) and ``coef k (1 - beta) p_s (lp_s - log M - KL(P_s || M))`` (JSD),
``k = 1 / T``. With ``teacher_probs`` the teacher's row holds probabilities
(not divided by ``T``).

Importing this module imports torch.
"""

from __future__ import annotations

import torch

__all__ = ["NAME", "backward_", "differentiable", "forward_", "jsd_ratios", "work_dtype"]

NAME = "reference"


def work_dtype(*dtypes: torch.dtype) -> torch.dtype:
    """float64 when either side is float64, else float32 (bfloat16 and float16 are computed in float32)."""
    return torch.float64 if torch.float64 in dtypes else torch.float32


def jsd_ratios(d: torch.Tensor, beta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(lp_t - log M, lp_s - log M)`` from ``d = lp_s - lp_t``, without forming ``log M``.

    With ``r = -log1p(c expm1(-|d|))``: for ``d <= 0`` (``c = 1 - beta``)
    they are ``(r, r + d)``, for ``d > 0`` (``c = beta``) ``(r - d, r)``;
    finite where one side's probability is 0 (the other ratio is then unused).
    Where ``1 + c expm1(-|d|) < 1/2`` the rounding of ``c expm1(-|d|)`` would be
    amplified (up to ``1 / (1 - c)`` times), so ``r = -log((1 - c) + c exp(-|d|))``
    there, with ``1 - c`` the other weight (as the C and Triton kernels do).
    """
    neg = d <= 0
    c = torch.full_like(d, beta).masked_fill(neg, 1.0 - beta)
    other = torch.full_like(d, 1.0 - beta).masked_fill(neg, beta)
    a = -d.abs()
    low = other + c * torch.exp(a)
    r = torch.where(low < 0.5, -torch.log(low), -torch.log1p(c * torch.expm1(a)))
    return torch.where(neg, r, r - d), torch.where(neg, r + d, r)


def _sides(
    student: torch.Tensor, teacher: torch.Tensor, temperature: float, teacher_probs: bool, *, track: bool = False
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(lp_s, p_s, lp_t, p_t)`` in the work dtype; with ``track``, the student's in autograd's graph."""
    work = work_dtype(student.dtype, teacher.dtype)
    lps = torch.log_softmax((student if track else student.detach()).to(work) / temperature, dim=-1)
    if teacher_probs:
        pt = teacher.detach().to(work)
        lpt = torch.log(pt)
    else:
        lpt = torch.log_softmax(teacher.detach().to(work) / temperature, dim=-1)
        pt = lpt.exp()
    return lps, lps.exp(), lpt, pt


def _zero_where(p: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    return torch.where(p == 0, 0.0, value)


def _rows(
    student: torch.Tensor, teacher: torch.Tensor, divergence: str, beta: float, temperature: float, teacher_probs: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(values, aux, lp_s, p_s, ratio)``: ``ratio`` is what the gradient multiplies ``p_s`` by."""
    return _rows_of(*_sides(student, teacher, temperature, teacher_probs), divergence, beta)


def _rows_of(
    lps: torch.Tensor, ps: torch.Tensor, lpt: torch.Tensor, pt: torch.Tensor, divergence: str, beta: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`_rows` from both sides' log-probabilities and probabilities (:func:`_sides`)."""
    if divergence == "forward_kl":
        values = _zero_where(pt, pt * (lpt - lps)).sum(-1)
        aux = _zero_where(pt, -(pt * lpt)).sum(-1)
        return values, aux, lps, ps, pt
    if divergence == "reverse_kl":
        values = _zero_where(ps, ps * (lps - lpt)).sum(-1)
        return values, values.clone(), lps, ps, lps - lpt
    t_ratio, s_ratio = jsd_ratios(lps - lpt, beta)
    from_t, from_s = _zero_where(pt, pt * t_ratio), _zero_where(ps, ps * s_ratio)
    values = (beta * from_t + (1.0 - beta) * from_s).sum(-1)
    aux = from_s.sum(-1)
    if beta in (0.0, 1.0):  # exactly 0, NaN for the invalid rows only
        invalid = (lps.isnan() | lpt.isnan()).any(-1)
        values = torch.zeros_like(values).masked_fill(invalid, torch.nan)
        aux = values.clone()
    return values, aux, lps, ps, s_ratio


def forward_(
    student: torch.Tensor,
    teacher: torch.Tensor,
    *,
    divergence: str,
    beta: float,
    temperature: float,
    teacher_probs: bool,
    keep: torch.Tensor | None,
    coef: torch.Tensor | None = None,
    grad: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-row ``(values, aux, stats)`` of row pairs ``(n, V)``; rows where ``keep`` is False get zeros.

    With ``coef`` and ``grad`` also writes the gradient of ``coef_i * value_i``
    with respect to ``student`` into ``grad`` (which may be ``student``).
    ``stats`` is unused by :func:`backward_` here (it recomputes).
    """
    values, aux, _, ps, ratio = _rows(student, teacher, divergence, beta, temperature, teacher_probs)
    if keep is not None:
        values, aux = torch.where(keep, values, 0.0), torch.where(keep, aux, 0.0)
    if grad is not None:
        assert coef is not None
        grad.copy_(_grad(divergence, beta, temperature, keep, coef, aux, ps, ratio))
    return values, aux, values.new_zeros((values.shape[0], 4))


def _grad(
    divergence: str,
    beta: float,
    temperature: float,
    keep: torch.Tensor | None,
    coef: torch.Tensor,
    aux: torch.Tensor,
    ps: torch.Tensor,
    ratio: torch.Tensor,
) -> torch.Tensor:
    g = torch.broadcast_to(coef.to(ps.dtype), aux.shape) / temperature
    if keep is not None:
        g = torch.where(keep, g, 0.0)
    g = g.unsqueeze(-1)
    if divergence == "forward_kl":
        out = g * (ps - ratio)
    elif divergence == "reverse_kl":
        out = _zero_where(ps, g * (ps * (ratio - aux.unsqueeze(-1))))
        out = torch.where((aux == torch.inf).unsqueeze(-1), torch.nan, out)
    elif beta in (0.0, 1.0):
        out = ps * 0.0
    else:
        out = _zero_where(ps, g * (1.0 - beta) * (ps * (ratio - aux.unsqueeze(-1))))
    return torch.where(g == 0, 0.0, out)


def backward_(
    student: torch.Tensor,
    teacher: torch.Tensor,
    stats: torch.Tensor,
    aux: torch.Tensor,
    coef: torch.Tensor,
    *,
    divergence: str,
    beta: float,
    temperature: float,
    teacher_probs: bool,
    keep: torch.Tensor | None,
    grad: torch.Tensor,
) -> None:
    """Write the gradient of ``coef_i * value_i`` with respect to ``student`` into ``grad`` (recomputed)."""
    del stats  # the statistics of the fused kernels; this path recomputes everything
    _, _, _, ps, ratio = _rows(student, teacher, divergence, beta, temperature, teacher_probs)
    grad.copy_(_grad(divergence, beta, temperature, keep, coef, aux.to(ps.dtype), ps, ratio))


def _smooth(
    lps: torch.Tensor, ps: torch.Tensor, lpt: torch.Tensor, pt: torch.Tensor, divergence: str, beta: float
) -> torch.Tensor:
    """The per-row values from :func:`_sides` in operations autograd differentiates to any order: ``log M``
    from the mixture itself, and each log replaced by 0 where its probability is 0 before any product, so that
    no NaN (``0 * inf``) reaches a gradient through the branch ``torch.where`` leaves out."""
    lps0, lpt0 = torch.where(ps == 0, 0.0, lps), torch.where(pt == 0, 0.0, lpt)
    if divergence == "forward_kl":
        return (pt * (lpt0 - torch.where(pt == 0, 0.0, lps))).sum(-1)
    if divergence == "reverse_kl":
        return (ps * (lps0 - torch.where(ps == 0, 0.0, lpt))).sum(-1)
    if beta in (0.0, 1.0):
        return (lps0 * 0.0).sum(-1)
    mix = beta * pt + (1.0 - beta) * ps
    lm = torch.log(torch.where(mix == 0, 1.0, mix))
    return (beta * pt * (lpt0 - lm) + (1.0 - beta) * ps * (lps0 - lm)).sum(-1)


def differentiable(
    student: torch.Tensor,
    teacher: torch.Tensor,
    *,
    divergence: str,
    beta: float,
    temperature: float,
    teacher_probs: bool,
    keep: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row ``(values, aux)`` of :func:`forward_` as torch operations differentiable to any order.

    What the distillation losses compute where autograd must see through
    them: under a ``torch.func`` transform (``grad``, ``vmap``, ``jacrev``),
    whose tensors have no storage for a kernel to read, and in a backward pass
    that records its own graph (``create_graph=True``: gradient penalties,
    meta-gradients). The values are :func:`forward_`'s, to the last bit; their
    derivatives, of every order, are those of :func:`_smooth`, the same
    function written for autograd (``values + (smooth - stop_gradient(smooth))``).
    """
    lps, ps, lpt, pt = _sides(student, teacher, temperature, teacher_probs, track=True)
    values, aux, _, _, _ = _rows_of(lps.detach(), ps.detach(), lpt, pt, divergence, beta)
    smooth = _smooth(lps, ps, lpt, pt, divergence, beta)
    values = values + torch.where(smooth.detach().isfinite(), smooth - smooth.detach(), 0.0)  # inf stays inf
    if keep is not None:
        values, aux = torch.where(keep, values, 0.0), torch.where(keep, aux, 0.0)
    return values, aux
