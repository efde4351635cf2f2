from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from analysts.nn import (  # noqa: E402
    asymmetric_mse_loss,
    bce_loss,
    focal_loss,
    huber_loss,
    huber_sign_loss,
    make_loss,
    mse_loss,
    mse_sign_loss,
    sign_error_ratio_loss,
)
from engine.errors import ConfigError  # noqa: E402

TARGET = torch.tensor([0.5])
RIGHT_SIGN = torch.tensor([1.5])   # error +1.0, same sign as the target
WRONG_SIGN = torch.tensor([-0.5])  # error -1.0, opposite sign


def _value(fn, pred, target=TARGET, **kw) -> float:
    return float(fn(pred, target, **kw))


def test_mse_is_symmetric_and_quadratic():
    assert _value(mse_loss, RIGHT_SIGN) == pytest.approx(1.0)
    assert _value(mse_loss, WRONG_SIGN) == pytest.approx(1.0)
    assert _value(mse_loss, torch.tensor([2.5])) == pytest.approx(4.0)


def test_huber_is_quadratic_inside_delta_and_linear_outside():
    assert _value(huber_loss, torch.tensor([0.9]), delta=1.0) == pytest.approx(0.5 * 0.4**2)
    # |error| = 3 > delta = 1: delta * (|e| - delta / 2)
    assert _value(huber_loss, torch.tensor([3.5]), delta=1.0) == pytest.approx(2.5)
    assert _value(huber_loss, WRONG_SIGN) == _value(huber_loss, RIGHT_SIGN)


@pytest.mark.parametrize("fn", [mse_sign_loss, huber_sign_loss, sign_error_ratio_loss])
def test_a_wrong_sign_error_costs_more_than_a_right_sign_error_of_the_same_size(fn):
    assert _value(fn, WRONG_SIGN) > _value(fn, RIGHT_SIGN)


def test_sign_penalised_losses_scale_the_base_loss_on_wrong_sign_rows():
    assert _value(mse_sign_loss, WRONG_SIGN, sign_penalty=2.0) == pytest.approx(3.0)
    assert _value(mse_sign_loss, RIGHT_SIGN, sign_penalty=2.0) == pytest.approx(1.0)
    assert _value(huber_sign_loss, WRONG_SIGN, delta=0.5, sign_penalty=1.0) == pytest.approx(
        2 * 0.5 * (1.0 - 0.25))
    # no penalty: the plain losses
    assert _value(mse_sign_loss, WRONG_SIGN, sign_penalty=0.0) == _value(mse_loss, WRONG_SIGN)


def test_sign_error_ratio_adds_a_smooth_share_of_sign_errors():
    pred = torch.tensor([1.0, -1.0])
    target = torch.tensor([1.0, 1.0])
    value = float(sign_error_ratio_loss(pred, target, sign_penalty=1.0, temperature=0.01))
    # mse = (0 + 4) / 2 = 2; soft share of sign errors -> 1/2 at a low temperature
    assert value == pytest.approx(2.5, abs=1e-6)


def test_asymmetric_mse_weights_over_and_under_prediction():
    over = _value(asymmetric_mse_loss, RIGHT_SIGN, over_weight=3.0, under_weight=1.0)
    under = _value(asymmetric_mse_loss, WRONG_SIGN, over_weight=3.0, under_weight=1.0)
    assert (over, under) == (pytest.approx(3.0), pytest.approx(1.0))
    # an over-optimistic forecast that also has the wrong sign costs more than a right-sign one
    assert _value(asymmetric_mse_loss, torch.tensor([0.5]), torch.tensor([-0.5])) > _value(
        asymmetric_mse_loss, torch.tensor([-1.5]), torch.tensor([-0.5]))


def test_focal_equals_bce_without_focusing_and_down_weights_easy_rows():
    logits = torch.tensor([3.0, -0.2, 0.4])
    labels = torch.tensor([1.0, 1.0, 0.0])
    assert float(focal_loss(logits, labels, gamma=0.0)) == pytest.approx(float(
        bce_loss(logits, labels)))
    easy, hard = torch.tensor([4.0]), torch.tensor([-1.0])
    one = torch.tensor([1.0])
    ratio_easy = float(focal_loss(easy, one)) / float(bce_loss(easy, one))
    ratio_hard = float(focal_loss(hard, one)) / float(bce_loss(hard, one))
    assert ratio_easy < ratio_hard
    p = 1 / (1 + math.exp(-4.0))
    assert ratio_easy == pytest.approx((1 - p) ** 2, rel=1e-4)


@pytest.mark.parametrize("name", ["bce", "focal", "mse", "huber", "mse_sign", "huber_sign",
                                  "sign_error_ratio", "asymmetric_mse"])
def test_every_named_loss_has_finite_gradients(name):
    pred = torch.tensor([0.3, -0.2, 1.5], requires_grad=True)
    target = torch.tensor([1.0, 0.0, 1.0]) if name in ("bce", "focal") else torch.tensor(
        [0.5, 0.1, -1.0])
    loss = make_loss(name)(pred, target)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(pred.grad).all()


def test_unknown_loss_names_the_valid_ones():
    with pytest.raises(ConfigError, match="valid losses: bce, focal, mse"):
        make_loss("mae")
