/*
 * pr_controller: discrete proportional-resonant controller, the difference
 * equations OwnTech's control_library `Pr` runs
 *
 *     r(k) = b0 * e(k) + b1 * e(k-1) - a1 * r(k-1) - a2 * r(k-2)
 *     u(k) = Kp * e(k) + Kr * r(k)
 *
 * with b0 = Ts*cos(phi'), b1 = -Ts*cos(phi' - w0*Ts), a1 = -2*cos(w0*Ts) and
 * a2 = 1 (phi' is a phase lead at w0 to compensate delays).
 *
 * u is clamped to [out_min, out_max]. When it saturates, r(k) is recomputed
 * from the clamped output, r(k) = (u_sat - Kp*e(k)) / Kr (back-calculation,
 * as `Pr` does): the resonator then holds what the saturated output needs
 * instead of integrating on. As in `Pr`, r(k-1) is kept, so under a large
 * constant error the output can swing to the opposite bound for a few
 * samples before settling on the right one.
 *
 * Single precision only, so a Cortex-M4F runs it on its FPU without
 * double-precision helpers. The coefficients come in the parameters (the
 * generated gains header carries them, so every build uses the same bits);
 * pr_controller_set_w0 recomputes them with cosf when w0 changes at run time.
 * simbaflow.pr_model repeats these operations in the same order, bit for
 * bit, provided the compiler does not fuse multiply-adds
 * (-ffp-contract=off).
 *
 * No heap, no HAL: the caller owns the struct and feeds the error.
 * Portable C99; also compiles as C++ (OwnTech applications are C++).
 */
#ifndef PR_CONTROLLER_H
#define PR_CONTROLLER_H

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    float kp;      /* proportional gain */
    float kr;      /* resonant gain, != 0 (the back-calculation divides by it) */
    float b0;      /* Ts*cos(phi') */
    float b1;      /* -Ts*cos(phi' - w0*Ts) */
    float a1;      /* -2*cos(w0*Ts); a2 is 1 */
    float out_min; /* lower output bound */
    float out_max; /* upper output bound, >= out_min */
} pr_controller_params_t;

typedef struct {
    pr_controller_params_t params;
    float inverse_kr;  /* 1/Kr, computed once */
    float error_prev;  /* e(k-1) */
    float resonant_1;  /* r(k-1), after back-calculation */
    float resonant_2;  /* r(k-2) */
    float output;      /* u(k-1), clamped */
} pr_controller_t;

/* b0, b1, a1 of the resonator for sample time ts_s, w0 (rad/s) and phi' (rad). */
void pr_controller_coefficients(float ts_s, float w0_rad_s, float phi_prime_rad,
                                float *b0, float *b1, float *a1);

/* Copy the parameters and clear the state. Returns 0, or -1 (nothing
 * changed) when kr == 0 or out_min > out_max. */
int pr_controller_init(pr_controller_t *pr, const pr_controller_params_t *params);

/* Clear the state (e, r and the output back to 0), keeping the parameters. */
void pr_controller_reset(pr_controller_t *pr);

/* Change Kp and Kr without touching the state. Returns 0, or -1 (nothing
 * changed) when kr == 0. */
int pr_controller_set_gains(pr_controller_t *pr, float kp, float kr);

/* Move the output bounds (out_min <= out_max); they apply from the next calculate. */
void pr_controller_set_bounds(pr_controller_t *pr, float out_min, float out_max);

/* Retune the resonance to w0 (rad/s) without touching the state, as the
 * client does with the server's frequency. */
void pr_controller_set_w0(pr_controller_t *pr, float ts_s, float w0_rad_s, float phi_prime_rad);

/* One sample: returns u(k) clamped to the bounds; `error` must be finite. */
float pr_controller_calculate(pr_controller_t *pr, float error);

#ifdef __cplusplus
}
#endif

#endif /* PR_CONTROLLER_H */
