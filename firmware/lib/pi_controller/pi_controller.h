/*
 * pi_controller: discrete PI in the recurrence form of the DC current study
 *
 *     alpha(k) = alpha(k-1) + a1 * e(k) + a0 * e(k-1)
 *
 * e.g. with Tustin coefficients a1 = Kp + Ki*Ts/2 and a0 = -Kp + Ki*Ts/2
 * (every discretisation simbaflow sweeps reduces to this form).
 *
 * The output is clamped to [out_min, out_max] and the clamped value is what
 * is stored as alpha(k-1) for the next step: clamping the state is the
 * anti-windup (the integral cannot run away while the output is saturated).
 * The bounds may move every sample (set_bounds): with output-voltage
 * compensation, duty = alpha + Vs/E, so the duty limits 0..1 are the alpha
 * limits -Vs/E .. 1 - Vs/E, and clamping alpha there keeps the anti-windup
 * exact while letting alpha go negative to bring the current down.
 *
 * Two variants share the law:
 *  - float: single precision only, so a Cortex-M4F runs it on its FPU
 *    without calling double-precision helpers;
 *  - fixed: int32 values in a Q format with `frac_bits` fractional bits,
 *    products summed in int64, one round-to-nearest (ties away from zero)
 *    shift, saturation to the output bounds.
 *
 * No heap, no HAL: the caller owns the structs and feeds the error.
 * Portable C99; also compiles as C++ (OwnTech applications are C++).
 */
#ifndef PI_CONTROLLER_H
#define PI_CONTROLLER_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Parameters of the float variant. */
typedef struct {
    float a0;      /* coefficient of e(k-1) */
    float a1;      /* coefficient of e(k) */
    float out_min; /* lower output bound */
    float out_max; /* upper output bound, >= out_min */
} pi_controller_params_t;

/* Float controller: parameters plus the two values of state. */
typedef struct {
    pi_controller_params_t params;
    float alpha_prev; /* alpha(k-1), already clamped */
    float error_prev; /* e(k-1) */
} pi_controller_t;

/* Parameters of the fixed-point variant: every value in Q(32-frac_bits).frac_bits. */
typedef struct {
    int32_t a0;
    int32_t a1;
    int32_t out_min;
    int32_t out_max;
    uint8_t frac_bits; /* 0..31 */
} pi_controller_fixed_params_t;

typedef struct {
    pi_controller_fixed_params_t params;
    int32_t alpha_prev;
    int32_t error_prev;
} pi_controller_fixed_t;

/* Copy the parameters and clear the state (alpha(-1) = e(-1) = 0, then clamped). */
void pi_controller_init(pi_controller_t *pi, const pi_controller_params_t *params);

/* Clear the state (as init does), keeping the parameters: e.g. when the leg is disarmed. */
void pi_controller_reset(pi_controller_t *pi);

/* Change a0, a1 without touching the state (gain update while running). */
void pi_controller_set_coefficients(pi_controller_t *pi, float a0, float a1);

/* One sample: returns alpha(k) clamped to the bounds; `error` must be finite. */
float pi_controller_calculate(pi_controller_t *pi, float error);

/* Move the output bounds (out_min <= out_max); they apply from the next calculate. */
void pi_controller_set_bounds(pi_controller_t *pi, float out_min, float out_max);

void pi_controller_fixed_init(pi_controller_fixed_t *pi, const pi_controller_fixed_params_t *params);

void pi_controller_fixed_reset(pi_controller_fixed_t *pi);

void pi_controller_fixed_set_coefficients(pi_controller_fixed_t *pi, int32_t a0, int32_t a1);

void pi_controller_fixed_set_bounds(pi_controller_fixed_t *pi, int32_t out_min, int32_t out_max);

/*
 * One sample in fixed point. `error` is clamped to [-INT32_MAX, INT32_MAX]
 * so that the int64 sum of the two products cannot overflow for any int32
 * coefficients; that clamped value is also what is stored as e(k-1).
 */
int32_t pi_controller_fixed_calculate(pi_controller_fixed_t *pi, int32_t error);

#ifdef __cplusplus
}
#endif

#endif /* PI_CONTROLLER_H */
