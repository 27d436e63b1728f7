"""Spherical-harmonic transforms on a Gaussian grid, for the data generator.

Triangular truncation T: zonal wavenumbers ``m = 0..T``, total wavenumbers ``n = m..T``.
Spectral coefficients are complex arrays ``[T+1, T+1]`` indexed ``[m, n]`` (zero where n < m).
Legendre functions are orthonormal on [-1, 1]: ``∫ P̄ₙᵐ(μ)² dμ = 1``, so the forward transform is
a Gauss–Legendre quadrature and the inverse a plain sum. Vectors are handled as
``U = u cos φ, V = v cos φ`` with stream function ψ and velocity potential χ, as in classic
spectral models (Hack & Jakob 1992); the identities are checked in ``tests/test_simulate.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EARTH_RADIUS_M = 6.371e6


def legendre(truncation: int, mu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Orthonormal associated Legendre functions P̄ and H̄ = (1-μ²) dP̄/dμ at the points ``mu``.

    Args:
        truncation: T.
        mu: Sines of the latitudes.

    Returns:
        Two arrays ``[T+1 (m), len(mu), T+1 (n)]``, zero where n < m.
    """
    big = truncation + 2  # one extra degree for the derivative recurrence
    mu = np.asarray(mu, dtype=np.float64)
    cos = np.sqrt(1.0 - mu**2)
    p = np.zeros((big, mu.size, big))
    p[0, :, 0] = np.sqrt(0.5)
    for m in range(1, big):
        p[m, :, m] = np.sqrt((2 * m + 1) / (2 * m)) * cos * p[m - 1, :, m - 1]
    n = np.arange(big)
    eps = np.zeros((big, big))  # eps[m, n] = sqrt((n² - m²) / (4n² - 1))
    for m in range(big):
        k = n[m:]
        eps[m, m:] = np.sqrt((k**2 - m**2) / (4.0 * k**2 - 1.0))
    for m in range(big):
        if m + 1 < big:
            p[m, :, m + 1] = np.sqrt(2 * m + 3) * mu * p[m, :, m]
        for k in range(m + 2, big):
            p[m, :, k] = (mu * p[m, :, k - 1] - eps[m, k - 1] * p[m, :, k - 2]) / eps[m, k]
    t1 = truncation + 1
    h = np.zeros((t1, mu.size, t1))
    for m in range(t1):
        for k in range(m, t1):
            h[m, :, k] = -k * eps[m, k + 1] * p[m, :, k + 1]
            if k > m:
                h[m, :, k] += (k + 1) * eps[m, k] * p[m, :, k - 1]
    return p[:t1, :, :t1], h


@dataclass
class GaussianGrid:
    """A Gaussian grid (``nlat`` × ``2·nlat``) with spectral transforms at truncation T.

    Attributes:
        nlat: Latitude rows.
        truncation: T; at most (2 · nlat - 1) // 3, so that products do not alias.
        radius: The sphere's radius in metres.
    """

    nlat: int
    truncation: int
    radius: float = EARTH_RADIUS_M

    def __post_init__(self) -> None:
        self.nlon = 2 * self.nlat
        if 3 * self.truncation + 1 > self.nlon:
            raise ValueError(
                f"truncation T{self.truncation} aliases on {self.nlon} longitudes; "
                f"use T <= {(self.nlon - 1) // 3}"
            )
        mu, w = np.polynomial.legendre.leggauss(self.nlat)
        self.mu = mu[::-1].copy()  # north to south, like ERA5
        self.weights = w[::-1].copy()
        self.lat = np.degrees(np.arcsin(self.mu))
        self.lon = np.arange(self.nlon) * 360.0 / self.nlon
        self.coslat2 = 1.0 - self.mu**2
        self.p, self.h = legendre(self.truncation, self.mu)
        t1 = self.truncation + 1
        n = np.arange(t1, dtype=np.float64)
        self.mask = n[None, :] >= np.arange(t1)[:, None]
        self.laplacian = -n * (n + 1) / self.radius**2  # eigenvalue per n
        inv = np.zeros(t1)
        inv[1:] = 1.0 / self.laplacian[1:]
        self.inverse_laplacian = inv
        self.im = 1j * np.arange(t1)[:, None]  # i·m per row of a coefficient array
        # Quadrature weights folded into the forward matrices, with and without 1/(a(1-μ²)).
        self.p_fwd = self.p * self.weights[None, :, None]
        self.p_fwd_vec = self.p_fwd / (self.radius * self.coslat2)[None, :, None]
        self.h_fwd_vec = self.h * (self.weights / (self.radius * self.coslat2))[None, :, None]

    # --- Fourier part ------------------------------------------------------------------
    def _fourier(self, grid: np.ndarray) -> np.ndarray:
        """[..., nlat, nlon] grid -> [..., T+1 (m), nlat] complex Fourier coefficients."""
        coeffs = np.fft.rfft(grid, axis=-1)[..., : self.truncation + 1] / self.nlon
        return np.swapaxes(coeffs, -1, -2)

    def _grid(self, fourier: np.ndarray) -> np.ndarray:
        """[..., T+1, nlat] Fourier coefficients -> [..., nlat, nlon] real grid."""
        full = np.zeros((*fourier.shape[:-2], self.nlat, self.nlon // 2 + 1), dtype=complex)
        full[..., : self.truncation + 1] = np.swapaxes(fourier, -1, -2)
        return np.fft.irfft(full * self.nlon, n=self.nlon, axis=-1)

    @staticmethod
    def _legendre_sum(fourier: np.ndarray, matrix: np.ndarray) -> np.ndarray:
        """Σ_j F[..., m, j] · matrix[m, j, n] -> [..., m, n]: one real GEMM per m."""
        lead = fourier.shape[:-2]
        f = fourier.reshape(-1, *fourier.shape[-2:]).transpose(1, 0, 2)  # [m, k, j]
        out = np.matmul(np.concatenate([f.real, f.imag], axis=1), matrix)  # [m, 2k, n]
        k = f.shape[1]
        res = (out[:, :k] + 1j * out[:, k:]).transpose(1, 0, 2)
        return res.reshape(*lead, *res.shape[-2:])

    @staticmethod
    def _legendre_eval(spec: np.ndarray, matrix: np.ndarray) -> np.ndarray:
        """Σ_n S[..., m, n] · matrix[m, j, n] -> [..., m, j]: one real GEMM per m."""
        lead = spec.shape[:-2]
        s = spec.reshape(-1, *spec.shape[-2:]).transpose(1, 0, 2)  # [m, k, n]
        out = np.matmul(np.concatenate([s.real, s.imag], axis=1), matrix.transpose(0, 2, 1))
        k = s.shape[1]
        res = (out[:, :k] + 1j * out[:, k:]).transpose(1, 0, 2)
        return res.reshape(*lead, *res.shape[-2:])

    # --- scalar and vector transforms ---------------------------------------------------
    def to_spectral(self, grid: np.ndarray) -> np.ndarray:
        """Spectral coefficients ``[..., T+1, T+1]`` of fields.

        Args:
            grid: Fields on the grid, ``[..., nlat, nlon]``.
        """
        return self._legendre_sum(self._fourier(grid), self.p_fwd) * self.mask

    def to_grid(self, spec: np.ndarray) -> np.ndarray:
        """Fields on the grid ``[..., nlat, nlon]``.

        Args:
            spec: Spectral coefficients, ``[..., T+1, T+1]``.
        """
        return self._grid(self._legendre_eval(spec, self.p))

    def uv_cos(self, psi: np.ndarray, chi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Grid U = u cos φ and V = v cos φ from spectral stream function and potential.

        Args:
            psi: Stream function ψ.
            chi: Velocity potential χ.
        """
        u, v = self.fourier_uv(psi, chi)
        return self._grid(u), self._grid(v)

    def fourier_uv(self, psi: np.ndarray, chi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Fourier coefficients of U and V (see ``uv_cos``).

        Args:
            psi: Stream function ψ.
            chi: Velocity potential χ.
        """
        a = self.radius
        fu = self._legendre_eval(self.im * chi / a, self.p) - self._legendre_eval(psi / a, self.h)
        fv = self._legendre_eval(self.im * psi / a, self.p) + self._legendre_eval(chi / a, self.h)
        return fu, fv

    def to_grid_with_uv(
        self, spec: np.ndarray, psi: np.ndarray, chi: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Scalars and U, V on the grid with a single inverse FFT.

        Args:
            spec: Spectral scalars, ``[k, T+1, T+1]``.
            psi: Stream function ψ.
            chi: Velocity potential χ.
        """
        fu, fv = self.fourier_uv(psi, chi)
        fs = self._legendre_eval(spec, self.p)
        grids = self._grid(np.concatenate([fs, fu[None], fv[None]]))
        return grids[:-2], grids[-2], grids[-1]

    def to_grid_with_rotational_uv(
        self, spec: np.ndarray, psi: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Scalars and U, V of non-divergent flows (one per stream function) on the grid, with
        a single inverse FFT.

        Args:
            spec: Spectral scalars, ``[k, T+1, T+1]``.
            psi: Stream functions, ``[l, T+1, T+1]``.

        Returns:
            Scalars ``[k, nlat, nlon]``, U and V ``[l, nlat, nlon]``.
        """
        a = self.radius
        fs = self._legendre_eval(spec, self.p)
        fu = -self._legendre_eval(psi / a, self.h)
        fv = self._legendre_eval(self.im * psi / a, self.p)
        grids = self._grid(np.concatenate([fs, fu, fv]))
        k, n = spec.shape[0], psi.shape[0]
        return grids[:k], grids[k : k + n], grids[k + n :]

    def mean_square(self, spec: np.ndarray) -> float:
        """Global mean of the square of a field, from its spectral coefficients (Parseval).

        Args:
            spec: Spectral coefficients, ``[T+1, T+1]``.
        """
        weight = np.where(np.arange(self.truncation + 1)[:, None] == 0, 1.0, 2.0) * self.mask
        return float((weight * np.abs(spec) ** 2).sum()) / 2.0

    def div_curl(self, a_cos: np.ndarray, b_cos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Spectral divergence and curl of the vector (A, B)/cos φ.

        Args:
            a_cos: A on the grid.
            b_cos: B on the grid.
        """
        f = self._fourier(np.stack([a_cos, b_cos]))
        return self._div_curl_fourier(f[0], f[1])

    def _div_curl_fourier(self, fa: np.ndarray, fb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pa = self._legendre_sum(np.stack([fa, fb]), self.p_fwd_vec)
        ha = self._legendre_sum(np.stack([fb, fa]), self.h_fwd_vec)
        div = self.im * pa[0] - ha[0]
        curl = self.im * pa[1] + ha[1]
        return div * self.mask, curl * self.mask

    def analyse(
        self, scalars: np.ndarray, a_cos: np.ndarray, b_cos: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Spectral transforms of scalars and div/curl of vectors, in one Fourier pass.

        Args:
            scalars: Fields on the grid, ``[k, nlat, nlon]``.
            a_cos: A of the vectors, ``[l, nlat, nlon]``.
            b_cos: B of the vectors, ``[l, nlat, nlon]``.
        """
        k, l_ = scalars.shape[0], a_cos.shape[0]
        f = self._fourier(np.concatenate([scalars, a_cos, b_cos]))
        spec = self._legendre_sum(f[:k], self.p_fwd) * self.mask
        div, curl = self._div_curl_fourier(f[k : k + l_], f[k + l_ :])
        return spec, div, curl
