#!/usr/bin/env python3
"""Fits erfcx(a) = exp(a^2) erfc(a) on a in [0, 11] by a polynomial of degree 12 in
u = SCALE*t - SHIFT, t = 1/(1 + 0.4a), as used by erfc_f32 in
src/scalar/branch_free.rs. Least squares with relative weights on Chebyshev nodes,
references from mpmath at 40 digits. Needs numpy and mpmath (pip install numpy mpmath).
Prints SCALE, SHIFT, the coefficients (lowest degree first) and the largest relative
error on a dense grid."""
import mpmath as mp
import numpy as np

mp.mp.dps = 40
C, LAST, DEGREE, NODES = 0.4, 11.0, 12, 600


def erfcx(a):
    return float(mp.exp(a * a) * mp.erfc(a))


t_min = 1 / (1 + C * LAST)
scale, shift = 2 / (1 - t_min), (1 + t_min) / (1 - t_min)
k = np.arange(NODES)
t = (1 + t_min) / 2 + (1 - t_min) / 2 * np.cos(np.pi * (k + 0.5) / NODES)
values = np.array([erfcx(mp.mpf(a)) for a in (1 / t - 1) / C])
basis = np.polynomial.chebyshev.chebvander(scale * t - shift, DEGREE) / values[:, None]
chebyshev, *_ = np.linalg.lstsq(basis, np.ones(NODES), rcond=None)
coefficients = np.polynomial.chebyshev.cheb2poly(chebyshev)

a = np.linspace(0, LAST, 20001)
u = scale / (1 + C * a) - shift
fitted = np.polynomial.polynomial.polyval(u, coefficients)
exact = np.array([erfcx(mp.mpf(x)) for x in a])
print("SCALE", repr(scale), "SHIFT", repr(shift))
for c in coefficients:
    print(repr(float(c)))
print("largest relative error", np.max(np.abs(fitted / exact - 1)))
