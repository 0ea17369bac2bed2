/*
 * simbaflow current loop for one TWIST leg (LEG1, buck), OwnTech SPIN board.
 *
 * The critical task samples the leg current at the study's sample time and
 * runs the controller the study selected, with the gains `simbaflow promote`
 * wrote to include/controller_gains.h:
 *
 *     duty = alpha + V1/V_high   (output-voltage compensation, seed 002), 0..1
 *     alpha = PI(i_ref - i1)     within the study's bounds, narrowed each
 *                                sample to what the duty range can apply
 *
 * Build variants (platformio.ini environments):
 *   default                           float pi_controller (pi_recurrence)
 *   -DSIMBAFLOW_USE_FIXED_POINT       pi_controller in the header's Q format
 *   -DSIMBAFLOW_USE_CONTROL_LIBRARY_PID  OwnTech control_library Pid
 *
 * Serial keys: h help, p power on, i idle, u/d reference +/- 0.5 A,
 * r dump the recorded scope (power off first).
 */

#include <zephyr/console/console.h>

#include "ShieldAPI.h"
#include "SpinAPI.h"
#include "TaskAPI.h"
#include "ScopeMimicry.h"

#include "controller_gains.h"

#if defined(SIMBAFLOW_USE_CONTROL_LIBRARY_PID)
#include "pid.h"
#if CONTROLLER_GAINS_REALISATION != CONTROLLER_GAINS_REALISATION_CONTROL_LIBRARY_PID
#error "controller_gains.h: the study selected pi_recurrence; build without SIMBAFLOW_USE_CONTROL_LIBRARY_PID or re-run the study with realisation control_library_pid"
#endif
#else
#include "pi_controller.h"
#if CONTROLLER_GAINS_REALISATION != CONTROLLER_GAINS_REALISATION_PI_RECURRENCE
#error "controller_gains.h: the study selected control_library_pid; build with -DSIMBAFLOW_USE_CONTROL_LIBRARY_PID (environment USB_control_library_pid)"
#endif
#endif

/* TaskAPI schedules the critical task in whole microseconds. */
#if CONTROLLER_GAINS_TS_NS % 1000 != 0
#error "controller_gains.h: the study's sample time is not a whole number of microseconds, which TaskAPI cannot schedule; re-run the study with such a sample rate (e.g. 20 kHz) and promote again"
#endif
static const uint32_t CONTROL_TASK_PERIOD_US = CONTROLLER_GAINS_TS_NS / 1000;

/* Duty range of the leg (the design's duty_cycle limiter). */
static const float32_t DUTY_MIN = 0.0F;
static const float32_t DUTY_MAX = 1.0F;

/* Protection: the leg stops above this current or below this bus voltage. */
static const float32_t I_TRIP_A = 8.0F;
static const float32_t V_HIGH_MIN_V = 10.0F;
static const float32_t I_REF_STEP_A = 0.5F;

enum class Mode { IDLE, POWER };
static volatile Mode mode = Mode::IDLE;
static bool pwm_enabled = false;

static float32_t i1_a;          /* leg current (measured) */
static float32_t v1_v;          /* leg output voltage (measured) */
static float32_t v_high_v;      /* DC bus voltage (measured) */
static float32_t i_ref_a = 0.0F;
static float32_t duty;
static float32_t alpha;

#if defined(SIMBAFLOW_USE_CONTROL_LIBRARY_PID)
static Pid pid;
#elif defined(SIMBAFLOW_USE_FIXED_POINT)
static pi_controller_fixed_t pi;
static const float32_t Q_SCALE = (float32_t)(1ULL << CONTROLLER_GAINS_FRAC_BITS);
#else
static pi_controller_t pi;
#endif

static const uint16_t RECORD_SIZE = 1024;
static ScopeMimicry scope(RECORD_SIZE, 4);
static bool record_requested = false;

static bool scope_trigger()
{
    return mode == Mode::POWER;
}

static void controller_reset()
{
#if defined(SIMBAFLOW_USE_CONTROL_LIBRARY_PID)
    /* Pid's bounds are fixed: the study's alpha bounds (its own
     * back-calculation anti-windup acts there, not at the duty limits). */
    PidParams params = {CONTROLLER_GAINS_TS_S, CONTROLLER_GAINS_KP, CONTROLLER_GAINS_PID_TI_S, 0.0F, 0.0F,
                        CONTROLLER_GAINS_OUT_MIN, CONTROLLER_GAINS_OUT_MAX};
    pid.init(params);
#elif defined(SIMBAFLOW_USE_FIXED_POINT)
    const pi_controller_fixed_params_t params = {
        CONTROLLER_GAINS_A0_Q, CONTROLLER_GAINS_A1_Q,
        CONTROLLER_GAINS_OUT_MIN_Q, CONTROLLER_GAINS_OUT_MAX_Q, CONTROLLER_GAINS_FRAC_BITS};
    pi_controller_fixed_init(&pi, &params);
#else
    const pi_controller_params_t params = {
        CONTROLLER_GAINS_A0, CONTROLLER_GAINS_A1, CONTROLLER_GAINS_OUT_MIN, CONTROLLER_GAINS_OUT_MAX};
    pi_controller_init(&pi, &params);
#endif
}

#if defined(SIMBAFLOW_USE_FIXED_POINT)
/* Float to Q format, rounding half away from zero like simbaflow.fixedpoint. */
static int32_t to_q(float32_t x)
{
    const float32_t scaled = x * Q_SCALE;
    return (int32_t)(scaled >= 0.0F ? scaled + 0.5F : scaled - 0.5F);
}
#endif

/* One controller step; alpha_min/max keep duty = alpha + comp within bounds. */
static float32_t controller_step(float32_t error_a, float32_t alpha_min, float32_t alpha_max)
{
#if defined(SIMBAFLOW_USE_CONTROL_LIBRARY_PID)
    (void)alpha_min;
    (void)alpha_max;
    return pid.calculateWithReturn(error_a, 0.0F);
#elif defined(SIMBAFLOW_USE_FIXED_POINT)
    pi_controller_fixed_set_bounds(&pi, to_q(alpha_min), to_q(alpha_max));
    return (float32_t)pi_controller_fixed_calculate(&pi, to_q(error_a)) / Q_SCALE;
#else
    pi_controller_set_bounds(&pi, alpha_min, alpha_max);
    return pi_controller_calculate(&pi, error_a);
#endif
}

static void read_sensors()
{
    float32_t value = shield.sensors.getLatestValue(I1_LOW);
    if (value != NO_VALUE) {
        i1_a = value;
    }
    value = shield.sensors.getLatestValue(V1_LOW);
    if (value != NO_VALUE) {
        v1_v = value;
    }
    value = shield.sensors.getLatestValue(V_HIGH);
    if (value != NO_VALUE) {
        v_high_v = value;
    }
}

static void power_off()
{
    if (pwm_enabled) {
        shield.power.stop(LEG1);
        pwm_enabled = false;
    }
    controller_reset();
}

void loop_critical_task()
{
    read_sensors();
    if (mode == Mode::POWER && (i1_a > I_TRIP_A || v_high_v < V_HIGH_MIN_V)) {
        mode = Mode::IDLE;
    }
    if (mode == Mode::IDLE) {
        power_off();
        return;
    }
    /* alpha beyond what the duty range can apply would only wind the state
     * up: clamp it to the study's bounds and to DUTY_MIN/MAX - comp. */
    const float32_t comp = v1_v / v_high_v;
    const float32_t lo = DUTY_MIN - comp > CONTROLLER_GAINS_OUT_MIN ? DUTY_MIN - comp : CONTROLLER_GAINS_OUT_MIN;
    const float32_t hi = DUTY_MAX - comp < CONTROLLER_GAINS_OUT_MAX ? DUTY_MAX - comp : CONTROLLER_GAINS_OUT_MAX;
    alpha = controller_step(i_ref_a - i1_a, lo, hi);
    duty = alpha + comp;
    /* Within range already for pi_controller; Pid only knows its fixed bounds. */
    duty = duty < DUTY_MIN ? DUTY_MIN : (duty > DUTY_MAX ? DUTY_MAX : duty);
    shield.power.setDutyCycle(LEG1, duty);
    if (!pwm_enabled) {
        shield.power.start(LEG1);
        pwm_enabled = true;
    }
    scope.acquire();
}

static void dump_scope()
{
    uint8_t *buffer = scope.get_buffer();
    const uint16_t words = scope.get_buffer_size() >> 2; /* 4-byte floats */
    printk("begin record\n#");
    for (uint16_t k = 0; k < scope.get_nb_channel(); k++) {
        printk("%s,", scope.get_channel_name(k));
    }
    printk("\n# %d\n", scope.get_final_idx());
    for (uint16_t k = 0; k < words; k++) {
        printk("%08x\n", *((uint32_t *)buffer + k));
        task.suspendBackgroundUs(100);
    }
    printk("end record\n");
}

void loop_background_task()
{
    spin.led.toggle();
    if (mode == Mode::IDLE && record_requested) {
        dump_scope();
        record_requested = false;
    }
    if (mode == Mode::POWER) {
        printk("i_ref %.2f A, i1 %.2f A, duty %.3f\n", (double)i_ref_a, (double)i1_a, (double)duty);
    }
    task.suspendBackgroundMs(500);
}

void loop_communication_task()
{
    switch (console_getchar()) {
    case 'h':
        printk("p: power on, i: idle, u/d: i_ref +/- %.1f A, r: dump record\n", (double)I_REF_STEP_A);
        printk("gains: %s, candidate Kp %.4f Ki %.1f, Ts %u us\n", CONTROLLER_GAINS_Q_FORMAT,
               (double)CONTROLLER_GAINS_KP, (double)CONTROLLER_GAINS_KI, (unsigned)CONTROL_TASK_PERIOD_US);
        break;
    case 'p':
        scope.start();
        mode = Mode::POWER;
        break;
    case 'i':
        mode = Mode::IDLE;
        break;
    case 'u':
        i_ref_a += I_REF_STEP_A;
        break;
    case 'd':
        i_ref_a -= I_REF_STEP_A;
        break;
    case 'r':
        record_requested = true;
        break;
    default:
        break;
    }
}

void setup_routine()
{
    shield.sensors.enableDefaultTwistSensors();
    shield.power.initBuck(LEG1);
    controller_reset();

    scope.connectChannel(i_ref_a, "i_ref");
    scope.connectChannel(i1_a, "i1");
    scope.connectChannel(alpha, "alpha");
    scope.connectChannel(duty, "duty");
    scope.set_trigger(&scope_trigger);
    scope.set_delay(0.0F);

    const uint32_t background = task.createBackground(loop_background_task);
    const uint32_t communication = task.createBackground(loop_communication_task);
    task.createCritical(loop_critical_task, CONTROL_TASK_PERIOD_US);
    task.startBackground(background);
    task.startBackground(communication);
    task.startCritical();
}

int main(void)
{
    setup_routine();
    return 0;
}
