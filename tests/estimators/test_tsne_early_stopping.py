"""scikit-learn's stopping rules in the ``tsne`` optimizer: ``n_iter_without_progress`` and
``min_grad_norm`` (:class:`gidr_reference.optimizers.EarlyStop`), checked against
scikit-learn's own gradient descent and TSNE, in both backends and through gidr.TSNE."""
from __future__ import annotations

import math

import numba
import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.manifold import TSNE as SklearnTSNE
from sklearn.manifold._t_sne import _gradient_descent

import gidr
from gidr.validation import GidrValueError
from gidr_reference.optimizers import AmplifiedSchedule, EarlyStop


@pytest.fixture(scope="module")
def digits():
    return load_digits().data[:150]


def schedule(**rules) -> AmplifiedSchedule:
    return AmplifiedSchedule(learning_rate=200.0, exaggeration=12.0, n_exaggerated=250, momentum=0.5,
                             final_momentum=0.8, min_gain=0.01, **rules)


def sklearn_stop(errors, patience, start, max_iter, every):
    """The iteration at which scikit-learn's _gradient_descent stops, fed ``errors[i]`` at
    iteration i (a gradient whose norm never reaches min_grad_norm=0)."""
    def objective(p, compute_error=True):
        return errors[objective.i], np.ones_like(p)

    def counted(p, compute_error=True):
        value = objective(p, compute_error)
        objective.i += 1
        return value

    objective.i = start
    _, _, stopped = _gradient_descent(counted, np.zeros(4), start, max_iter, n_iter_check=every,
                                      n_iter_without_progress=patience, min_grad_norm=0.0)
    return stopped


def gidr_stop(errors, patience, start, max_iter, every):
    rule = EarlyStop(schedule(n_iter_without_progress=patience, min_grad_norm=0.0, check_every=every), start)
    for epoch in range(start, max_iter):
        if rule.due(epoch) and rule.check(epoch, errors[epoch], 1.0):
            return epoch
    return max_iter - 1


@pytest.mark.parametrize("patience", [-1, 0, 49, 50, 51, 120, 300])
@pytest.mark.parametrize("seed", range(4))
def test_no_progress_rule_stops_where_scikit_learns_does(patience, seed):
    """scikit-learn's second phase (iterations 250 .. max_iter - 1, best loss tracked from 250),
    on loss sequences that improve at random checks: the same stopping iteration."""
    rng = np.random.default_rng(seed)
    max_iter, every = 1000, 50
    improves = rng.random(max_iter) < 0.4
    errors = 5.0 - np.cumsum(np.where(improves, rng.random(max_iter), -0.1 * rng.random(max_iter)))
    assert gidr_stop(errors, patience, 250, max_iter, every) == sklearn_stop(errors, patience, 250, max_iter, every)


def test_no_progress_rule_with_checks_every_epoch():
    errors = np.r_[np.linspace(3.0, 1.0, 300), np.full(700, 1.0)]  # flat (not lower) from iteration 300
    assert gidr_stop(errors, 20, 250, 1000, 1) == sklearn_stop(errors, 20, 250, 1000, 1) == 299 + 21


def test_gradient_norm_rule_ends_the_exaggeration_then_stops():
    rule = EarlyStop(schedule(min_grad_norm=1e-3), 0)
    assert not rule.check(49, 2.0, 0.5) and rule.exaggerated(50)
    assert not rule.check(99, 1.9, 1e-3)  # small during the exaggeration: it ends after this epoch
    assert rule.n_exaggerated == 100 and not rule.exaggerated(100) and rule.stopped is None
    assert not rule.check(149, 1.5, 0.01)
    assert rule.check(199, 1.4, 1e-4) and rule.stopped == {"epoch": 200, "reason": "gradient norm"}
    assert rule.record["exaggeration_epochs"] == 100 and [c[0] for c in rule.record["checks"]] == [50, 100, 150, 200]


def test_rules_off_check_nothing():
    rule = EarlyStop(schedule(), 0)
    assert not any(rule.due(epoch) for epoch in range(1000)) and rule.record is None
    with pytest.raises(ValueError, match="constant learning rate"):
        EarlyStop(AmplifiedSchedule(1.0, 12.0, 10, 0.5, 0.8, 0.01, anneal=True, min_grad_norm=1e-7), 0)


def first_stale_check(record, exaggerated):
    """The first check after the exaggeration whose loss is not below every earlier one of that phase."""
    best = math.inf
    for epoch, loss, _, _ in record["checks"]:
        if epoch <= exaggerated:
            continue
        if loss >= best:
            return epoch
        best = loss
    return None


@pytest.mark.parametrize("backend", ["reference", "numba"])
def test_the_loop_stops_at_the_first_stale_check(digits, backend):
    """n_iter_without_progress=0: the run ends at the first check without a new best loss, and
    epochs_run and the record agree (a huge rate, as in scikit-learn's test, keeps the loss from
    settling; the exact loss of a calm run falls at every check)."""
    result = gidr.Pipeline.from_preset("tsne", backend=backend, repulsion="exact", perplexity=10, n_epochs=1500,
                                       random_state=0, n_iter_without_progress=0, learning_rate=1e8).run(digits)
    resolved = result.config["resolved"]
    record = resolved["early_stop"]
    stale = first_stale_check(record, 250)
    assert stale is not None and record["stopped"] == {"epoch": stale, "reason": "no progress"}
    assert resolved["epochs_run"] == stale == record["checks"][-1][0] < 1500
    assert all(norm > 0 for _, _, norm, _ in record["checks"])


@pytest.mark.parametrize("backend", ["reference", "numba"])
def test_rules_off_by_default_in_the_stage(digits, backend):
    result = gidr.Pipeline.from_preset("tsne", backend=backend, repulsion="exact", perplexity=10, n_epochs=300,
                                       random_state=0).run(digits)
    assert result.config["resolved"]["early_stop"] is None and result.config["resolved"]["epochs_run"] == 300


def test_numba_step_reports_the_norm_of_gains_times_forces():
    """amplified_step's step_sq[i] is sum_c (gains F)^2, recovered from the step it took."""
    from gidr_numba.tsne import amplified_step

    rng = np.random.default_rng(0)
    n, d = 64, 2
    Y = rng.normal(size=(n, d))
    attraction, channels = rng.normal(size=(n, d)), rng.normal(size=(2, n, d))
    parts, weights = (attraction, channels, np.ones(n)), (1.5, np.array([0.7, -0.2]))
    update, gains, step_sq = rng.normal(size=(n, d)), rng.uniform(0.5, 2.0, size=(n, d)), np.empty(n)
    previous = update.copy()
    lr, momentum = 3.0, 0.8
    amplified_step(Y, parts, weights, (update, gains, step_sq), (lr, momentum, 0.01, math.inf))
    direction = (momentum * previous - update) / lr  # update = momentum * previous - lr * gains * F
    np.testing.assert_allclose(step_sq, (direction ** 2).sum(axis=1), rtol=1e-9)


def test_numba_record_is_the_same_whatever_the_threads():
    """On all 1,797 digits: enough work per epoch for the kernels to run on every thread."""
    from gidr_numba.gdr import PARALLEL_MIN_WORK

    data = load_digits().data

    def run():
        return gidr.Pipeline.from_preset("tsne", backend="numba", perplexity=10, n_epochs=400, random_state=0,
                                         n_iter_without_progress=50, min_grad_norm=1e-4).run(data)

    previous = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = run()
        numba.set_num_threads(previous)
        many = run()
    finally:
        numba.set_num_threads(previous)
    assert one.affinities.P.nnz >= PARALLEL_MIN_WORK
    strip = [c[:3] for c in one.config["resolved"]["early_stop"]["checks"]]  # not the seconds
    assert strip == [c[:3] for c in many.config["resolved"]["early_stop"]["checks"]]
    assert one.config["resolved"]["early_stop"]["stopped"] == many.config["resolved"]["early_stop"]["stopped"]
    assert np.array_equal(one.embedding, many.embedding)


def test_tsne_min_grad_norm_stops_where_scikit_learns_does(digits, capsys):
    """A min_grad_norm no gradient stays above ends the exaggeration at the first check (epoch 50)
    and the run at the next (n_iter_ 99), in scikit-learn's TSNE and in gidr's."""
    theirs = SklearnTSNE(min_grad_norm=1e3, random_state=0, init="random", perplexity=10).fit(digits)
    ours = gidr.TSNE(min_grad_norm=1e3, random_state=0, init="random", perplexity=10, verbose=2).fit(digits)
    assert ours.n_iter_ == theirs.n_iter_ == 99
    record = ours.result_.config["resolved"]["early_stop"]
    assert record["exaggeration_epochs"] == 50 and record["stopped"] == {"epoch": 100, "reason": "gradient norm"}
    assert ours.kl_divergence_ == record["checks"][-1][1] and ours.embedding_.shape == (150, 2)
    out = capsys.readouterr().out
    assert "[t-SNE] KL divergence after 50 iterations with early exaggeration" in out
    assert "[t-SNE] Iteration 100: gradient norm" in out and "Finished." in out
    assert "[t-SNE] Iteration 50: error = " in out and ", gradient norm = " in out


def test_tsne_no_progress_line_and_iteration_count(digits, capsys):
    ours = gidr.TSNE(n_iter_without_progress=0, random_state=0, perplexity=10, method="exact", max_iter=2000,
                     verbose=2).fit(digits)
    record = ours.result_.config["resolved"]["early_stop"]
    assert record["stopped"]["reason"] == "no progress"
    assert ours.n_iter_ == record["stopped"]["epoch"] - 1 < 1999
    out = capsys.readouterr().out
    assert (f"[t-SNE] Iteration {record['stopped']['epoch']}: did not make any progress during the last 0 episodes. "
            "Finished.") in out


def test_tsne_private_check_constants_are_honoured(digits):
    """scikit-learn's tests set _N_ITER_CHECK and _EXPLORATION_MAX_ITER on the instance."""
    model = gidr.TSNE(n_iter_without_progress=-1, random_state=0, perplexity=10, max_iter=400, learning_rate=1e8,
                      init="random")
    model._N_ITER_CHECK, model._EXPLORATION_MAX_ITER = 1, 0
    model.fit(digits)
    record = model.result_.config["resolved"]["early_stop"]
    assert record["exaggeration_epochs"] == 0 and record["checks"][0][0] == 1
    assert record["stopped"]["reason"] == "no progress" and model.n_iter_ < 399


@pytest.mark.parametrize("name, value, message", [
    ("n_iter_without_progress", -2, r"'n_iter_without_progress' parameter of TSNE must be an int in \[-1, inf\)"),
    ("min_grad_norm", -1.0, r"'min_grad_norm' parameter of TSNE must be a float in \[0, inf\)"),
])
def test_tsne_bad_rules_are_named(digits, name, value, message):
    with pytest.raises(GidrValueError, match=message):
        gidr.TSNE(**{name: value}).fit(digits)


def test_stage_check_every_must_be_positive(digits):
    with pytest.raises(GidrValueError, match=r"'check_every' parameter of optimizer 'tsne'"):
        gidr.Pipeline.from_preset("tsne", check_every=0).run(digits)
