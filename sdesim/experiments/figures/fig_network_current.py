"""Is SGD on a real network out of equilibrium? The lag-antisymmetric covariance of SGD, SGLD and the SDE.

docs/paper.md (§6, Lemma 7): SGD's stationary state carries a persistent
probability current, because its gradient noise ``D`` is not isotropic. Test,
on real MNIST digits (docs/nonequilibrium.md, "A network at a true minimum"):

1. an MLP 49-16-10 (7x7 digits, tanh, softmax cross-entropy with weight decay
   ``wd |w|^2 / 2``) on ``N = 1000`` digits, minimised by
   :func:`sdesim.chains.find_minimum` to ``|grad f| <= gtol``; the Hessian's
   smallest eigenvalue must be ``> 0`` (a saddle is never taken for a minimum).
   Tanh + weight decay: with ReLU and weight decay the full-batch iteration
   kept drifting along flat directions (dead units) or stalled at saddles;
   tanh makes the loss smooth and the decay makes the minimum isolated;
2. SGD (uniform ``b``-subsets), SGLD (full gradient + isotropic noise of SGD's
   total power) and the SDE ``dx = -grad f dt + sqrt(2 beta^-1 D(x)) dW``
   (Euler--Maruyama, ``dt = lr``) at the same ``beta^-1 =
   sdesim.temperature(lr, b, N, replacement=False, finite_population="exact")``
   = ``lr (N - b) / (2 b (N - 1))``, ``n_chains`` vmapped chains each in
   float64, started from the linearised stationary Gaussian
   (:func:`sdesim.chains.stationary_start` with the second-order mean shift;
   SGD: ``sigma_discrete``, SDE: ``sigma_ou``, SGLD: ``beta^-1 c H^-1``);
   stationarity diagnostics (split-R-hat, mean/variance drift, loss trend) on
   the full weights and on each plane;
3. ``A(tau)_01`` (:func:`sdesim.analysis.lag_antisymmetry`, lags in SGD
   steps, the same for every sampler) in three planes: the max-current plane
   of the linearised SGD (``LinearisedStationary.max_current_plane``), the
   top-2 principal plane of the SGD samples, the top-2 eigenvectors of
   ``D(w*)``; against the linearised prediction (discrete for SGD, the OU for
   the SDE, 0 for SGLD), with z-scores against the prediction and against 0;
4. total-variation distances between the samplers' 2D marginals (histograms
   on a common grid) in the max-current and PCA planes, each against its
   split-half floor (the TV between the two halves of one sampler's chains;
   cross-sampler TVs are also half-vs-half, so the sample sizes match);
5. Example 19 at ``lam = 1.5``: the gradient-descent map ``x <- x - lr grad f``
   settles on a closed curve at ``lr = 0.01`` (:func:`sdesim.trace_limit_cycle`
   with ``lr``) while the flow spirals into the origin; with noise
   (``x <- x - lr grad f + sqrt(2 beta^-1 lr) xi``, ``beta = 1``: the SGD-map
   chain, Euler--Maruyama) the mean angular velocity about the origin
   (:func:`sdesim.estimate_current`, as in ``fig4_limit_cycles``) against the
   SDE's exact ``lam pi^{3/2} / Z = 1.096``.

Writes ``figures/network_current.{png,pdf,json}`` (``--quick``: a 49-4-10
network on 200 digits, fewer chains and steps, ``network_current_quick.*``).

    python scripts/fig_network_current.py          # ~10-15 minutes on 2 CPU cores
    python scripts/fig_network_current.py --quick  # well under a minute
"""

from __future__ import annotations

import math
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import sdesim
from sdesim import chains, nn
from sdesim.analysis import exact_current_rotating_double_well, lag_antisymmetry, linearise
from .._figio import parser, save_figure

FULL = dict(n_data=1000, hidden=16, wd=3e-3, gtol=1e-7, lr=0.1, batch=32, n_chains=64, seg=250, burn_segs=2,
            segs=32, sparse_every=25, lags=(1, 2, 4, 8, 16, 32, 64), tv_bins=16,
            map_lr=0.01, e19_lrs=(0.01, 0.04), e19_particles=1000, e19_time=200.0, e19_burn=20.0, e19_starts=4,
            shifted_start=True, trace_flow=True)
QUICK = dict(n_data=100, hidden=2, wd=1e-2, gtol=1e-7, lr=0.1, batch=16, n_chains=32, seg=200, burn_segs=1,
             segs=4, sparse_every=20, lags=(1, 4, 16), tv_bins=10, map_lr=0.04,
             e19_lrs=(0.04,), e19_particles=100, e19_time=10.0, e19_burn=5.0, e19_starts=1,
             shifted_start=False, trace_flow=False)
SAMPLERS = ("sgd", "sde", "sgld")
PLANES = ("max_current", "pca", "top_D")
LAM = 1.5
BOX = (-2.0, 2.0, -2.0, 2.0)


def _network(cfg):
    """The finite sum of the MLP's per-example losses over its flat float64 weights."""
    data = nn.load_mnist(size=7).subset(cfg["n_data"]).flatten()
    x, y = np.asarray(data.x_train, np.float64), np.asarray(data.y_train)
    mlp = eqx.nn.MLP(49, 10, cfg["hidden"], 1, activation=jnp.tanh, key=jax.random.PRNGKey(0))
    mlp = jax.tree_util.tree_map(lambda a: a.astype(jnp.float64) if eqx.is_inexact_array(a) else a, mlp)
    fs = chains.FiniteSum.from_model(mlp, x, y, loss=nn.CrossEntropyLoss(weight_decay=cfg["wd"]))
    return fs, data.name


def _run_projected(kernel, x0, cfg, seed, bases, keep_sparse):
    """Run in segments of ``seg`` steps with a snapshot every step; keep only projections.

    Returns ``{name: (T, C, 2)}`` of ``(x - w*) @ basis`` at every step after
    burn-in, the sparse full snapshots ``(n, C, d)`` every ``sparse_every``
    steps (when ``keep_sparse``), and the steps per second.
    """
    w_star = bases["_w_star"]
    proj = {k: [] for k in bases if not k.startswith("_")}
    sparse = []
    x = np.asarray(x0)
    t0 = time.perf_counter()
    n_steps = 0
    for s in range(cfg["burn_segs"] + cfg["segs"]):
        ens = chains.run_chains(kernel, x, n_chains=x.shape[0], n_steps=cfg["seg"], save_every=1,
                                dtype="float64", seed=seed * 1000 + s)
        xs = np.asarray(ens.x)
        n_steps += cfg["seg"]
        x = xs[-1]
        if s < cfg["burn_segs"]:
            continue
        dx = xs - w_star
        for k in proj:
            proj[k].append(dx @ bases[k])
        if keep_sparse:
            sparse.append(xs[cfg["sparse_every"] - 1::cfg["sparse_every"]])
    rate = n_steps * x.shape[0] / (time.perf_counter() - t0)
    out = {k: np.concatenate(v) for k, v in proj.items()}
    return out, (np.concatenate(sparse) if keep_sparse else None), rate


def _tv(a, b, edges):
    """Total-variation distance between the 2D histograms of samples ``a`` and ``b`` (``(n, 2)``) on ``edges``."""
    ha, _, _ = np.histogram2d(a[:, 0], a[:, 1], bins=edges)
    hb, _, _ = np.histogram2d(b[:, 0], b[:, 1], bins=edges)
    return 0.5 * float(np.abs(ha / ha.sum() - hb / hb.sum()).sum())


def _tv_table(proj, plane, bins, thin):
    """Split-half floors and half-vs-half cross TVs between the samplers' marginals in one plane."""
    pts = {s: proj[s][plane][::thin] for s in SAMPLERS}  # (T', C, 2)
    allp = np.concatenate([p.reshape(-1, 2) for p in pts.values()])
    lo, hi = np.percentile(allp, 0.5, axis=0), np.percentile(allp, 99.5, axis=0)
    edges = [np.linspace(lo[i], hi[i], bins + 1) for i in range(2)]
    edges = [np.concatenate([[-np.inf], e[1:-1], [np.inf]]) for e in edges]  # outer bins catch the tails
    halves = {}
    for s, p in pts.items():
        c = p.shape[1] // 2
        halves[s] = (p[:, :c].reshape(-1, 2), p[:, c:2 * c].reshape(-1, 2))
    out = {"bins": bins, "thin_steps": thin, "floor": {}, "cross": {}}
    for s in SAMPLERS:
        out["floor"][s] = _tv(*halves[s], edges)
    for i, s in enumerate(SAMPLERS):
        for t in SAMPLERS[i + 1:]:
            v = 0.5 * (_tv(halves[s][0], halves[t][1], edges) + _tv(halves[s][1], halves[t][0], edges))
            fl = max(out["floor"][s], out["floor"][t])
            out["cross"][f"{s}_vs_{t}"] = {"tv": v, "floor_max": fl, "ratio_to_floor": v / fl if fl > 0 else math.inf}
    return out


def _finite_or_none(x):
    """A float for the JSON, ``None`` where the diagnostic was not computed (NaN: no loss without ``fs``)."""
    return float(x) if math.isfinite(x) else None


def _stationarity_summary(st):
    return {"is_stationary": bool(st.is_stationary), "message": st.message, "failed": list(st.failed),
            "mean_drift_max_z": st.mean_drift_max, "spread_drift_max_z": st.spread_drift_max,
            "z_threshold": st.z_threshold, "rhat_max": st.rhat_max_value, "rhat_threshold": st.rhat_threshold,
            "loss_slope": _finite_or_none(st.loss_slope), "loss_slope_se": _finite_or_none(st.loss_slope_se),
            "loss_p": _finite_or_none(st.loss_p),
            "n_saved": st.n_saved, "n_chains": st.n_chains, "n_coords": st.n_coords}


def _network_part(cfg, quick):
    t_all = time.perf_counter()
    fs, data_name = _network(cfg)
    N, d = fs.n_data, fs.dim
    lr, b = cfg["lr"], cfg["batch"]
    t0 = time.perf_counter()
    m = chains.find_minimum(fs, np.asarray(fs.x0, np.float64), gtol=cfg["gtol"], max_steps=3000, escape_saddles=3)
    t_min = time.perf_counter() - t0
    if m.status != "minimum":
        raise RuntimeError(f"find_minimum did not reach a minimum: {m.message}")
    w = np.asarray(m.x, np.float64)
    beta_inv = sdesim.temperature(lr, b, N, replacement=False, finite_population="exact")
    t0 = time.perf_counter()
    lin = linearise(fs, w, lr, b, sampling="subset")
    t_lin = time.perf_counter() - t0
    H, D, lam, V = lin.H, lin.D, lin.hessian_eigenvalues, lin.hessian_eigenvectors
    assert abs(lin.beta_inv - beta_inv) < 1e-12 * beta_inv
    c_iso = float(np.trace(D) / d)  # SGLD's per-coordinate noise power (tr D / d, = fs.noise_power(w*))
    sigma_sgld = beta_inv * c_iso * (V / lam) @ V.T  # OU: H S + S H = 2 beta^-1 c I

    P_max = lin.max_current_plane()
    evD, VD = np.linalg.eigh(D)
    P_D = VD[:, ::-1][:, :2].copy()
    bases = {"_w_star": w, "max_current": P_max, "top_D": P_D}

    kernels = {"sgd": chains.sgd(fs, lr, b, sampling="subset"),
               "sde": chains.sde(fs, lr, b, beta_inv=beta_inv),
               "sgld": chains.sgld(fs, lr, b, noise_power=c_iso, beta_inv=beta_inv)}
    t0 = time.perf_counter()
    sfs = fs if cfg["shifted_start"] else None  # quick: centred at w* (the shift costs a compile)
    starts = {"sgd": chains.stationary_start(lin, cfg["n_chains"], seed=11, fs=sfs),
              "sde": chains.stationary_start(lin, cfg["n_chains"], seed=12, discrete=False, fs=sfs),
              "sgld": chains.stationary_start(lin, cfg["n_chains"], seed=13, sigma=sigma_sgld, fs=sfs)}
    t_start = time.perf_counter() - t0
    seeds = {"sgd": 1, "sde": 2, "sgld": 3}
    proj, sparse, rates, stat = {}, {}, {}, {}
    t_chain = {}
    # SGD first: the top principal plane of its samples (sparse full snapshots) ...
    t0 = time.perf_counter()
    proj["sgd"], sparse["sgd"], rates["sgd"] = _run_projected(kernels["sgd"], starts["sgd"], cfg, seeds["sgd"],
                                                                bases, True)
    ys = sparse["sgd"].reshape(-1, d)
    evC, VC = np.linalg.eigh(np.cov(ys, rowvar=False))
    P_pca = VC[:, ::-1][:, :2].copy()
    # ... then SGD once more with the same seeds (the same chains) for its projection on that plane
    p2, _, _ = _run_projected(kernels["sgd"], starts["sgd"], cfg, seeds["sgd"], {"_w_star": w, "pca": P_pca}, False)
    proj["sgd"]["pca"] = p2["pca"]
    t_chain["sgd"] = time.perf_counter() - t0
    bases["pca"] = P_pca
    for s in ("sde", "sgld"):
        t0 = time.perf_counter()
        proj[s], sparse[s], rates[s] = _run_projected(kernels[s], starts[s], cfg, seeds[s], bases, True)
        t_chain[s] = time.perf_counter() - t0
    planes = {"max_current": P_max, "pca": P_pca, "top_D": P_D}

    t0 = time.perf_counter()
    for s in SAMPLERS:
        st = {"full_weights": _stationarity_summary(chains.stationarity(sparse[s], fs=fs))}
        for k in PLANES:
            st[k] = _stationarity_summary(chains.stationarity(proj[s][k][cfg["sparse_every"] - 1::cfg["sparse_every"]]))
        stat[s] = st

    t_stat = time.perf_counter() - t0
    lags = list(cfg["lags"])
    A = {}
    for k in PLANES:
        A[k] = {}
        pred_disc = lin.predicted_A(lags, basis=planes[k])[:, 0, 1]
        pred_ou = lin.predicted_A(lags, discrete=False, basis=planes[k])[:, 0, 1]
        for s in SAMPLERS:
            est = lag_antisymmetry(proj[s][k], lags, spacing=lr)
            a, se = est.matrix[:, 0, 1], est.stderr[:, 0, 1]
            pred = {"sgd": pred_disc, "sde": pred_ou, "sgld": np.zeros(len(lags))}[s]
            A[k][s] = {"A01": a, "stderr": se, "predicted": pred,
                       "prediction": {"sgd": "discrete linearised SGD (sigma_discrete, M^tau)",
                                      "sde": "OU (sigma_ou, expm(-H tau))",
                                      "sgld": "0 (isotropic noise: Sigma commutes with H)"}[s],
                       "z_vs_prediction": (a - pred) / se, "z_vs_zero": a / se,
                       "p_value_A_eq_0": np.atleast_1d(est.p_value), "p_value_joint": est.p_value_joint,
                       "n_chains": est.n_chains, "n_time": est.n_time,
                       "covariance_in_plane": np.cov(proj[s][k].reshape(-1, 2), rowvar=False)}
        A[k]["predicted_discrete"] = pred_disc
        A[k]["predicted_ou"] = pred_ou
        A[k]["covariance_in_plane_discrete"] = planes[k].T @ lin.sigma_discrete @ planes[k]
        A[k]["covariance_in_plane_ou"] = planes[k].T @ lin.sigma_ou @ planes[k]

    # where the current lives: Rayleigh quotients u^T H u and the spectral weights of each plane
    where = {}
    Om = lin.current_matrix()
    omegas = np.sort(np.abs(np.linalg.eigvalsh(1j * Om)))[::-1]
    for k, P in planes.items():
        wts = (V.T @ P) ** 2  # (d, 2) weight of each column on the Hessian eigenvectors
        mean_lam = (lam[:, None] * wts).sum(0)
        where[k] = {"rayleigh_H": [float(P[:, i] @ H @ P[:, i]) for i in range(2)],
                    "hessian_weighted_mean_eigenvalue": mean_lam,
                    "weight_on_top10pct_hessian_modes": wts[lam >= np.quantile(lam, 0.9)].sum(0),
                    "omega_in_plane": float(P[:, 0] @ Om @ P[:, 1]),
                    "sigma_discrete_in_plane": P.T @ lin.sigma_discrete @ P}
    where["omega_max"] = float(omegas[0])
    where["omega_top5"] = omegas[:10:2]
    where["hessian_eigenvalue_quantiles"] = {"q0": lam[0], "q50": float(np.median(lam)), "q90": float(np.quantile(lam, 0.9)),
                                             "q100": lam[-1]}

    tvs = {k: _tv_table(proj, k, cfg["tv_bins"], thin=8) for k in ("max_current", "pca")}
    net = {
        "data": {"name": data_name, "n_data": N, "input": "7x7 downsampled digits, flattened (49)"},
        "model": {"architecture": f"MLP 49-{cfg['hidden']}-10, tanh", "dim": d, "loss": "softmax cross-entropy",
                  "weight_decay": cfg["wd"], "why": "tanh + weight decay: with ReLU and weight decay full-batch "
                  "descent kept drifting along flat directions or stalled at saddles; tanh is smooth and the decay "
                  "isolates the minimum"},
        "minimum": {"status": m.status, "message": m.message, "grad_norm": lin.grad_norm, "gtol": cfg["gtol"],
                    "hessian_min_eigenvalue": lam[0], "hessian_max_eigenvalue": lam[-1],
                    "loss": float(fs.value(jnp.asarray(w))), "seconds": t_min},
        "sgd": {"lr": lr, "batch": b, "sampling": "uniform b-subsets (without replacement)",
                "finite_population_factor": "exact (N - b)/(N - 1)",
                "finite_population_factor_value": (N - b) / (N - 1), "beta_inv": beta_inv,
                "lr_times_lambda_max": lr * lam[-1], "slowest_relaxation_steps": 1.0 / (lr * lam[0])},
        "sgld": {"noise_power": c_iso, "definition": "x <- x - lr grad f + sqrt(2 beta^-1 lr c) xi, c = tr D(w*)/d"},
        "sde": {"definition": "Euler-Maruyama of dx = -grad f dt + sqrt(2 beta^-1 D(x)) dW, dt = lr, exact D(x) "
                              "as one weighted gradient per step"},
        "chains": {"n_chains": cfg["n_chains"], "dtype": "float64", "burn_in_steps": cfg["burn_segs"] * cfg["seg"],
                   "steps_measured": cfg["segs"] * cfg["seg"], "snapshot_every_steps": 1,
                   "sparse_full_snapshot_every": cfg["sparse_every"],
                   "start_mean_shifted": cfg["shifted_start"],
                   "start": "stationary_start: N(stationary_mean (w* when start_mean_shifted is false), Sigma) with Sigma = sigma_discrete (SGD), "
                            "sigma_ou (SDE), beta^-1 c H^-1 (SGLD)",
                   "chain_steps_per_second": rates, "seconds": t_chain},
        "linearise_seconds": t_lin, "stationary_start_seconds": t_start,
        "pca_top_variances_sgd": evC[::-1][:5],
        "stationarity": stat, "stationarity_seconds": t_stat,
        "lags_steps": lags, "tau": [lr * L for L in lags],
        "A": A, "where_the_current_lives": where, "tv": tvs,
        "seconds": time.perf_counter() - t_all,
    }
    return net, proj, planes, lin


def _e19_part(cfg, quick):
    t0 = time.perf_counter()
    p = sdesim.problems.rotating_double_well(lam=LAM)
    r0 = np.array([0.02, 0.3, 0.6, 1.0])[:cfg["e19_starts"]]
    x0 = np.stack([r0, np.zeros_like(r0)], axis=1)
    flow_status = [str(s) for s in sdesim.trace_limit_cycle(p, x0).status] if cfg["trace_flow"] else []
    t1 = time.perf_counter()
    flow_s = t1 - t0
    mp = sdesim.trace_limit_cycle(p, x0, lr=cfg["map_lr"])
    map_s = time.perf_counter() - t1
    _, Z, Om, _ = exact_current_rotating_double_well(LAM, [0.0], [0.0])
    noisy = []
    for i, lr in enumerate(cfg["e19_lrs"]):
        n_steps = int(round(cfg["e19_time"] / lr))
        every = max(1, int(round(0.01 / lr)))
        ens = sdesim.simulate(p, beta_inv=1.0, n_particles=cfg["e19_particles"], n_steps=n_steps, dt=lr,
                              save_every=every, burn_in=int(round(cfg["e19_burn"] / lr)), seed=40 + i)
        est = sdesim.estimate_current(ens.x, ens.dt * ens.save_every, bins=16, box=BOX)
        om, se = float(est.angular_velocity), float(est.angular_velocity_stderr)
        noisy.append({"lr": lr, "n_particles": cfg["e19_particles"], "t_total": n_steps * lr, "tau": ens.dt * every,
                      "angular_velocity": om, "angular_velocity_stderr": se, "exact_sde": Om,
                      "z_vs_exact": (om - Om) / se})
    curve = {
        "lam": LAM, "lr": cfg["map_lr"], "x0": x0, "flow_seconds": flow_s, "map_seconds": map_s,
        "flow_status": flow_status, "map_status": [str(s) for s in mp.status],
        "map_mean_radius": mp.mean_radius, "map_period": mp.period, "map_rotation_number": mp.rotation_number,
        "normal_form_radius_law": 3.2327 * math.sqrt(cfg["map_lr"]),
    }
    orbit = mp.orbit[int(np.argmax(mp.is_cycle))] if np.any(mp.is_cycle) else None
    return {"map_curve": curve,
            "noisy_map": {"beta_inv": 1.0, "definition": "x <- x - lr grad f + sqrt(2 beta^-1 lr) xi (Euler-Maruyama); "
                          "mean angular velocity about the origin by sdesim.estimate_current as in fig4_limit_cycles",
                          "exact_definition": "lam pi^(3/2) / Z (the SDE's stationary current)", "Z": Z,
                          "runs": noisy},
            "seconds": time.perf_counter() - t0}, orbit, p


def _verdict(net, e19):
    A = net["A"]
    j = len(net["lags_steps"]) - 1
    mc, pc = A["max_current"], A["pca"]
    L = net["lags_steps"][j]

    def fmt(x):
        return f"{x['A01'][j]:.3g} ± {x['stderr'][j]:.2g} (pred {x['predicted'][j]:.3g}; z vs pred " \
               f"{x['z_vs_prediction'][j]:+.1f}, vs 0 {x['z_vs_zero'][j]:+.1f})"

    tv = net["tv"]["max_current"]["cross"]["sgd_vs_sgld"]
    wl = net["where_the_current_lives"]
    nm = e19["noisy_map"]["runs"][0]
    rows = [
        {"claim": "SGD's stationary state carries a persistent probability current (non-equilibrium; docs/paper.md §6, Lemma 7)",
         "measured": f"MNIST MLP at a minimum (lambda_min = {net['minimum']['hessian_min_eigenvalue']:.3g} > 0): "
                     f"A(tau = {L} steps)_01 in the max-current plane: SGD {fmt(mc['sgd'])}; SDE {fmt(mc['sde'])}",
         "verdict": "reproduced" if abs(mc["sgd"]["z_vs_zero"][j]) > 5 and abs(mc["sgd"]["z_vs_prediction"][j]) < 4
         else "not reproduced", "z": {"sgd_vs_0": mc["sgd"]["z_vs_zero"][j], "sgd_vs_pred": mc["sgd"]["z_vs_prediction"][j],
                                      "sde_vs_0": mc["sde"]["z_vs_zero"][j], "sde_vs_pred": mc["sde"]["z_vs_prediction"][j]}},
        {"claim": "the current comes from the anisotropic noise: with isotropic noise (SGLD) at the same temperature "
                  "there is none",
         "measured": f"SGLD in the same plane: {fmt(mc['sgld'])}",
         "verdict": "reproduced" if abs(mc["sgld"]["z_vs_zero"][j]) < 4 else "not reproduced",
         "z": {"sgld_vs_0": mc["sgld"]["z_vs_zero"][j]}},
        {"claim": "where the current lives",
         "measured": f"max-current plane: Rayleigh quotients u^T H u = {wl['max_current']['rayleigh_H'][0]:.3g}, "
                     f"{wl['max_current']['rayleigh_H'][1]:.3g} (Hessian eigenvalues up to "
                     f"{wl['hessian_eigenvalue_quantiles']['q100']:.3g}, median "
                     f"{wl['hessian_eigenvalue_quantiles']['q50']:.3g}); top-PCA plane (largest spread, slow directions): "
                     f"u^T H u = {wl['pca']['rayleigh_H'][0]:.3g}, {wl['pca']['rayleigh_H'][1]:.3g}, SGD A = {fmt(pc['sgd'])}",
         "verdict": "the current is in fast, high-curvature directions that PCA of the samples does not pick",
         "z": {"pca_sgd_vs_0": pc["sgd"]["z_vs_zero"][j]}},
        {"claim": "SGD's stationary law differs from an equilibrium sampler's (Phi != f; docs/paper.md §5)",
         "measured": f"TV(SGD, SGLD) in the max-current plane {tv['tv']:.3f} vs split-half floor {tv['floor_max']:.3f}",
         "verdict": "different" if tv["tv"] > 2 * tv["floor_max"] else "not resolved above sampling noise",
         "z": None},
        {"claim": "Example 19 (lam = 1.5) has limit cycles",
         "measured": f"flow: {set(e19['map_curve']['flow_status'])}; GD map lr = {e19['map_curve']['lr']}: "
                     f"{set(e19['map_curve']['map_status'])}, mean radius {np.nanmean(e19['map_curve']['map_mean_radius']):.4f}; "
                     f"noisy map lr = {nm['lr']}: Omega = {nm['angular_velocity']:.3f} ± {nm['angular_velocity_stderr']:.3f} "
                     f"(SDE exact {nm['exact_sde']:.3f}, z = {nm['z_vs_exact']:+.1f})",
         "verdict": "the closed curve is the discrete map's (vanishes as lr -> 0); with noise the map's chains wind "
                    "at the SDE's rate",
         "z": {"omega_vs_exact": nm["z_vs_exact"]}},
    ]
    return rows


def main(argv=None) -> int:
    args = parser(__doc__.splitlines()[0]).parse_args(argv)
    quick = args.quick
    t0 = time.time()
    jax.config.update("jax_enable_x64", True)
    cfg = QUICK if quick else FULL
    net, proj, planes, lin = _network_part(cfg, quick)
    e19, orbit, p = _e19_part(cfg, quick)
    numbers = {"quick": quick, "config": cfg, "network": net, "example19": e19}
    numbers["verdict"] = _verdict(net, e19)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(16, 9.5))
    lags = np.asarray(net["lags_steps"])
    colors = {"sgd": "tab:blue", "sde": "tab:orange", "sgld": "tab:green"}
    titles = {"max_current": "max-current plane (linearised SGD)", "pca": "top-PCA plane of the SGD samples",
              "top_D": "top-2 eigenvectors of D(w*)"}
    for ax, k in zip(axes[0], PLANES):
        for i, s in enumerate(SAMPLERS):
            r = net["A"][k][s]
            off = 1.0 + 0.06 * (i - 1)
            ax.errorbar(lags * off, r["A01"], yerr=r["stderr"], fmt="o", color=colors[s], ms=4, capsize=2,
                        label=f"{s.upper()} measured")
        ax.plot(lags, net["A"][k]["predicted_discrete"], "-", color="tab:blue", lw=1, label="linearised SGD (discrete)")
        ax.plot(lags, net["A"][k]["predicted_ou"], "--", color="tab:orange", lw=1, label="linearised SDE (OU)")
        ax.axhline(0, color="k", lw=0.5)
        ax.set_xscale("log")
        ax.set_xlabel("lag tau (SGD steps)")
        ax.set_ylabel("A(tau)_01")
        ax.set_title(titles[k], fontsize=10)
        ax.legend(fontsize=7)
    # marginals in the max-current and PCA planes
    for ax, k in zip(axes[1, :2], ("max_current", "pca")):
        for s in ("sgld", "sgd", "sde"):
            pts = proj[s][k][::37].reshape(-1, 2)
            ax.plot(pts[:, 0], pts[:, 1], ".", ms=1.2, alpha=0.35, color=colors[s], label=s.upper())
        tv = net["tv"][k]
        txt = "\n".join([f"TV {c.replace('_vs_', ' vs ')}: {v['tv']:.3f} (floor {v['floor_max']:.3f})"
                         for c, v in tv["cross"].items()])
        ax.text(0.02, 0.98, txt, transform=ax.transAxes, va="top", fontsize=7, family="monospace")
        ax.set_title(f"2D marginals, {titles[k]}", fontsize=10)
        ax.set_xlabel("(w - w*) . e1")
        ax.set_ylabel("(w - w*) . e2")
        ax.legend(fontsize=7, loc="lower right", markerscale=6)
    # Example 19
    ax = axes[1, 2]
    mc = e19["map_curve"]
    X1, X2 = np.meshgrid(np.linspace(-1.2, 1.2, 60), np.linspace(-1.2, 1.2, 60))
    G = -np.asarray(jax.vmap(p.grad_f)(jnp.stack([X1.ravel(), X2.ravel()], 1)))
    if True:
        ax.streamplot(X1, X2, G[:, 0].reshape(X1.shape), G[:, 1].reshape(X1.shape), density=0.8, color="0.7",
                      linewidth=0.5)
    if orbit is not None:
        o = np.vstack([orbit, orbit[:1]])
        ax.plot(o[:, 0], o[:, 1], "r-", lw=1.5, label=f"GD map lr = {mc['lr']}: attracting curve (r = "
                f"{np.nanmean(mc['map_mean_radius']):.3f})")
    nm = e19["noisy_map"]["runs"]
    ax.set_title("Example 19, lam = 1.5: flow " + ("/".join(sorted(set(mc["flow_status"]))) or "not traced")
                 + "; map "
                 + "/".join(sorted(set(mc["map_status"]))) + "\n" + "\n".join(
                     f"noisy map lr = {r['lr']}: Omega = {r['angular_velocity']:.3f} ± {r['angular_velocity_stderr']:.3f}"
                     f" (SDE {r['exact_sde']:.3f}, z = {r['z_vs_exact']:+.1f})" for r in nm), fontsize=9)
    ax.set_aspect("equal")
    ax.set_xlim(-1.2, 1.2)
    ax.set_ylim(-1.2, 1.2)
    ax.legend(fontsize=7, loc="lower left")
    mn = net["minimum"]
    fig.suptitle(f"Non-equilibrium SGD on MNIST: {net['model']['architecture']}, d = {net['model']['dim']}, N = "
                 f"{net['data']['n_data']}, |grad f| = {mn['grad_norm']:.1e}, lambda_min(H) = "
                 f"{mn['hessian_min_eigenvalue']:.2e}; lr = {net['sgd']['lr']}, b = {net['sgd']['batch']}, "
                 f"beta^-1 = {net['sgd']['beta_inv']:.3g}, {net['chains']['n_chains']} chains per sampler", fontsize=11)
    fig.tight_layout()
    save_figure(fig, "network_current", numbers, quick=quick, t0=t0, out=args.out, argv=argv, script=__file__)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
