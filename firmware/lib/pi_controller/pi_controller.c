/* pi_controller: see pi_controller.h for the law and its conventions. */
#ifndef PI_CONTROLLER_H
#include "pi_controller.h"
#endif

static float clamp_float(float x, float lo, float hi)
{
    if (x < lo) {
        return lo;
    }
    if (x > hi) {
        return hi;
    }
    return x;
}

static int64_t clamp_int64(int64_t x, int64_t lo, int64_t hi)
{
    if (x < lo) {
        return lo;
    }
    if (x > hi) {
        return hi;
    }
    return x;
}

void pi_controller_reset(pi_controller_t *pi)
{
    pi->alpha_prev = clamp_float(0.0f, pi->params.out_min, pi->params.out_max);
    pi->error_prev = 0.0f;
}

void pi_controller_init(pi_controller_t *pi, const pi_controller_params_t *params)
{
    pi->params = *params;
    pi_controller_reset(pi);
}

void pi_controller_set_coefficients(pi_controller_t *pi, float a0, float a1)
{
    pi->params.a0 = a0;
    pi->params.a1 = a1;
}

void pi_controller_set_bounds(pi_controller_t *pi, float out_min, float out_max)
{
    pi->params.out_min = out_min;
    pi->params.out_max = out_max;
}

float pi_controller_calculate(pi_controller_t *pi, float error)
{
    /* Evaluated left to right in single precision; the Python model
     * (simbaflow.promote.pi_model) uses the same order. */
    float alpha = pi->alpha_prev + pi->params.a1 * error + pi->params.a0 * pi->error_prev;
    alpha = clamp_float(alpha, pi->params.out_min, pi->params.out_max);
    pi->alpha_prev = alpha;
    pi->error_prev = error;
    return alpha;
}

void pi_controller_fixed_reset(pi_controller_fixed_t *pi)
{
    pi->alpha_prev = (int32_t)clamp_int64(0, pi->params.out_min, pi->params.out_max);
    pi->error_prev = 0;
}

void pi_controller_fixed_init(pi_controller_fixed_t *pi, const pi_controller_fixed_params_t *params)
{
    pi->params = *params;
    pi_controller_fixed_reset(pi);
}

void pi_controller_fixed_set_coefficients(pi_controller_fixed_t *pi, int32_t a0, int32_t a1)
{
    pi->params.a0 = a0;
    pi->params.a1 = a1;
}

void pi_controller_fixed_set_bounds(pi_controller_fixed_t *pi, int32_t out_min, int32_t out_max)
{
    pi->params.out_min = out_min;
    pi->params.out_max = out_max;
}

/* Shift right by `frac_bits`, rounding to nearest with ties away from zero
 * (the rounding simbaflow.fixedpoint.to_fixed uses). Only non-negative values
 * are shifted, because right-shifting a negative value is
 * implementation-defined in C. */
static int64_t round_shift(int64_t x, uint8_t frac_bits)
{
    const int64_t half = frac_bits > 0 ? (int64_t)1 << (frac_bits - 1) : 0;
    if (x >= 0) {
        return (x + half) >> frac_bits;
    }
    return -((-x + half) >> frac_bits);
}

int32_t pi_controller_fixed_calculate(pi_controller_fixed_t *pi, int32_t error)
{
    const int32_t e = error < -INT32_MAX ? -INT32_MAX : error;
    /* Both products are Q(2*frac_bits); |sum| <= 2 * 2^31 * INT32_MAX < 2^63. */
    const int64_t increment =
        (int64_t)pi->params.a1 * e + (int64_t)pi->params.a0 * pi->error_prev;
    const int64_t alpha = (int64_t)pi->alpha_prev + round_shift(increment, pi->params.frac_bits);
    pi->alpha_prev = (int32_t)clamp_int64(alpha, pi->params.out_min, pi->params.out_max);
    pi->error_prev = e;
    return pi->alpha_prev;
}
