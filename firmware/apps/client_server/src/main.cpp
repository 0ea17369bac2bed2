/*
 * AC client/server for two OwnTech TWIST boards (seeds 000/001), both roles
 * from this one source; the build selects the role:
 *
 *   -DROLE_SERVER  forms the AC voltage: voltage PR on V1_low - V2_low, and
 *                  every control period sends the CLIENT a frame (its voltage
 *                  reference, K_GAIN x its current, w0, status) over RS485;
 *   -DROLE_CLIENT  tracks the received current reference with a current PR,
 *                  the received voltage reference fed forward.
 *
 * Both roles' code is compiled in every build and the role is a constant
 * tested at run time, so no part of either role can silently drop out of a
 * build (the public example's reception code only compiled when a macro it
 * never defined was set).
 *
 * Both legs share one duty: LEG1 runs as a buck at d, LEG2 as a boost, so the
 * bridge's mean output is (2d - 1) V_bus and d = 0.5 + u / (2 V_bus), with u
 * the PR output in volts. Gains: include/ac_gains.h, written by
 * `simbaflow promote results/ac_client_server/selection.json` (which then
 * builds both roles' control path, host and Cortex-M4F).
 *
 * Serial keys: h help, p power (server) / arm (client), i idle (server) /
 * disarm (client), l / m k_gain +/- 0.1 (server), r dump the recorded scope
 * (idle only).
 */

#if defined(ROLE_SERVER) && !defined(ROLE_CLIENT)
static constexpr bool IS_SERVER = true;
#elif defined(ROLE_CLIENT) && !defined(ROLE_SERVER)
static constexpr bool IS_SERVER = false;
#else
#error "define exactly one of ROLE_SERVER, ROLE_CLIENT (platformio.ini environments server, client)"
#endif

#include <zephyr/console/console.h>

#include "CommunicationAPI.h"
#include "ScopeMimicry.h"
#include "ShieldAPI.h"
#include "SpinAPI.h"
#include "TaskAPI.h"
#include "trigo.h"

#include "ac_gains.h"
#include "pr_controller.h"
#include "rs485_frame.h"

static const char *const ROLE_NAME = IS_SERVER ? "SERVER" : "CLIENT";

/* TWIST: at most 8 A per power channel (TWIST README); trip below that. */
static const float32_t I_TRIP_A = 7.5F;
static const float32_t K_GAIN_STEP = 0.1F;
static const float32_t K_GAIN_MAX = 2.0F;
/* The client stops when the server falls silent for this many periods. */
static const uint32_t CLIENT_SILENT_PERIODS = 10;

enum class Mode { IDLE, POWER };
static volatile Mode mode = Mode::IDLE;
static volatile bool client_armed = true;
static volatile bool dump_requested = false;
static bool pwm_enabled = false;

/* Measurements (critical task). */
static float32_t i1_a;
static float32_t v1_v;
static float32_t v2_v;

/* Control signals, also recorded by the scope. */
static float32_t v_out_v;
static float32_t v_ref_v;
static float32_t i_ref_a;
static float32_t u_v;
static float32_t duty;
static volatile float32_t k_gain = AC_GAINS_K_GAIN;

static pr_controller_t pr;
static float32_t angle_rad;
static float32_t w0_rad_s = AC_GAINS_W0_RAD_S;

/* RS485: the server writes tx, the client reads rx. Received frames go to
 * one of two buffers and `rx_active` flips to it once it is whole, so the
 * critical task never reads a half-written frame. */
static uint8_t tx_bytes[RS485_FRAME_SIZE];
static uint8_t rx_bytes[RS485_FRAME_SIZE];
static rs485_frame_t rx_frames[2];
static volatile uint8_t rx_active;
static volatile uint32_t rx_count;
static bool tx_started;

static ScopeMimicry scope(1024, 6);

static bool scope_trigger()
{
    return true;
}

static void reception()
{
    const uint8_t next = (uint8_t)(1U - rx_active);
    if (rs485_frame_unpack(rx_bytes, &rx_frames[next]) == 0) {
        rx_active = next;
        rx_count = rx_count + 1U;
    }
}

static void send(uint8_t status)
{
    const rs485_frame_t frame = {v_ref_v, i_ref_a, w0_rad_s,
                                 rs485_frame_id_status(RS485_FRAME_ID_SERVER, status)};
    rs485_frame_pack(&frame, tx_bytes);
    communication.rs485.startTransmission();
}

static void init_pr()
{
    const pr_controller_params_t server = {
        AC_GAINS_SERVER_KP, AC_GAINS_SERVER_KR, AC_GAINS_SERVER_B0, AC_GAINS_SERVER_B1,
        AC_GAINS_SERVER_A1, -AC_GAINS_V_BUS_V, AC_GAINS_V_BUS_V,
    };
    const pr_controller_params_t client = {
        AC_GAINS_CLIENT_KP, AC_GAINS_CLIENT_KR, AC_GAINS_CLIENT_B0, AC_GAINS_CLIENT_B1,
        AC_GAINS_CLIENT_A1, -AC_GAINS_V_BUS_V, AC_GAINS_V_BUS_V,
    };
    /* The generated header's Kr are never 0, so init cannot refuse them. */
    pr_controller_init(&pr, IS_SERVER ? &server : &client);
}

static void power_off()
{
    if (pwm_enabled) {
        shield.power.stop(ALL);
        spin.led.turnOff();
        pwm_enabled = false;
    }
    pr_controller_reset(&pr);
    u_v = 0.0F;
}

static void apply(float32_t u_total_v)
{
    duty = 0.5F + u_total_v / (2.0F * AC_GAINS_V_BUS_V);
    shield.power.setDutyCycle(ALL, duty);
    if (!pwm_enabled) {
        pwm_enabled = true;
        spin.led.turnOn();
        shield.power.start(ALL);
    }
    scope.acquire();
}

static void measure()
{
    float32_t value = shield.sensors.getLatestValue(I1_LOW);
    if (value != NO_VALUE) {
        i1_a = value;
    }
    value = shield.sensors.getLatestValue(V1_LOW);
    if (value != NO_VALUE) {
        v1_v = value;
    }
    value = shield.sensors.getLatestValue(V2_LOW);
    if (value != NO_VALUE) {
        v2_v = value;
    }
    v_out_v = v1_v - v2_v;
}

static void server_step()
{
    if (mode == Mode::IDLE || i1_a > I_TRIP_A || i1_a < -I_TRIP_A) {
        if (pwm_enabled || !tx_started) {
            /* Tell the client once, then stay quiet until power comes back. */
            mode = Mode::IDLE;
            power_off();
            k_gain = AC_GAINS_K_GAIN;
            v_ref_v = 0.0F;
            i_ref_a = 0.0F;
            send(RS485_FRAME_STATUS_IDLE);
            tx_started = true;
        }
        return;
    }
    const bool starting = !pwm_enabled;
    angle_rad = ot_modulo_2pi(angle_rad + w0_rad_s * AC_GAINS_TS_S);
    v_ref_v = AC_GAINS_V_REF_AMPLITUDE_V * ot_sin(angle_rad);
    u_v = pr_controller_calculate(&pr, v_ref_v - v_out_v);
    apply(u_v);
    i_ref_a = k_gain * i1_a;
    send(starting ? RS485_FRAME_STATUS_START : RS485_FRAME_STATUS_POWER);
}

static void client_step()
{
    static uint32_t last_count;
    static uint32_t silent;
    const uint32_t count = rx_count;
    silent = (count == last_count) ? silent + 1U : 0U;
    last_count = count;
    const rs485_frame_t frame = rx_frames[rx_active];
    const uint8_t status = rs485_frame_status(&frame);
    const bool run = client_armed && count > 0U && silent < CLIENT_SILENT_PERIODS
                     && (status == RS485_FRAME_STATUS_POWER || status == RS485_FRAME_STATUS_START)
                     && i1_a < I_TRIP_A && i1_a > -I_TRIP_A;
    if (!run) {
        mode = Mode::IDLE;
        power_off();
        return;
    }
    mode = Mode::POWER;
    if (frame.w0_rad_s != w0_rad_s) {
        w0_rad_s = frame.w0_rad_s;
        pr_controller_set_w0(&pr, AC_GAINS_TS_S, w0_rad_s, AC_GAINS_CLIENT_PHI_PRIME_RAD);
    }
    v_ref_v = frame.v_ref_v;
    i_ref_a = frame.i_ref_a;
    u_v = pr_controller_calculate(&pr, i_ref_a - i1_a);
    apply(v_ref_v + u_v);
}

static void loop_critical_task()
{
    measure();
    if (IS_SERVER) {
        server_step();
    } else {
        client_step();
    }
}

static void dump_scope()
{
    uint8_t *buffer = scope.get_buffer();
    const uint16_t words = scope.get_buffer_size() >> 2; /* 4-byte floats */
    printk("begin record\n#");
    for (uint16_t k = 0; k < scope.get_nb_channel(); k++) {
        printk("%s,", scope.get_channel_name(k));
    }
    printk("\n");
    for (uint16_t k = 0; k < words; k++) {
        printk("%08x\n", *((uint32_t *)buffer + k));
        task.suspendBackgroundUs(100);
    }
    printk("end record\n");
}

static void loop_communication_task()
{
    switch (console_getchar()) {
    case 'h':
        printk("AC client/server: %s\n", ROLE_NAME);
        printk("  p: %s   i: %s   r: dump the record (idle)\n", IS_SERVER ? "power" : "arm",
               IS_SERVER ? "idle" : "disarm");
        if (IS_SERVER) {
            printk("  l / m: k_gain +/- %.1f (now %.2f)\n", (double)K_GAIN_STEP, (double)k_gain);
        }
        break;
    case 'p':
        if (IS_SERVER) {
            mode = Mode::POWER;
        } else {
            client_armed = true;
        }
        break;
    case 'i':
        if (IS_SERVER) {
            mode = Mode::IDLE;
        } else {
            client_armed = false;
        }
        break;
    case 'l':
        if (IS_SERVER && k_gain + K_GAIN_STEP <= K_GAIN_MAX) {
            k_gain = k_gain + K_GAIN_STEP;
        }
        break;
    case 'm':
        if (IS_SERVER && k_gain - K_GAIN_STEP >= 0.0F) {
            k_gain = k_gain - K_GAIN_STEP;
        }
        break;
    case 'r':
        dump_requested = true;
        break;
    default:
        break;
    }
}

static void loop_application_task()
{
    if (mode == Mode::IDLE && dump_requested) {
        dump_scope();
        dump_requested = false;
    } else if (mode == Mode::POWER) {
        printk("%s k=%.2f vref=%.2f vout=%.2f iref=%.3f i1=%.3f d=%.3f\n", ROLE_NAME, (double)k_gain,
               (double)v_ref_v, (double)v_out_v, (double)i_ref_a, (double)i1_a, (double)duty);
    }
    task.suspendBackgroundMs(100);
}

static void setup_routine()
{
    shield.sensors.enableDefaultTwistSensors();
    shield.power.initBuck(LEG1);
    shield.power.initBoost(LEG2);
    init_pr();
    communication.rs485.configure(tx_bytes, rx_bytes, RS485_FRAME_SIZE, reception, SPEED_20M);
    if (IS_SERVER) {
        communication.sync.initMaster();
    } else {
        communication.sync.initSlave();
    }

    scope.connectChannel(i1_a, "i1");
    scope.connectChannel(v_out_v, "v_out");
    scope.connectChannel(v_ref_v, "v_ref");
    scope.connectChannel(i_ref_a, "i_ref");
    scope.connectChannel(u_v, "u");
    scope.connectChannel(duty, "duty");
    scope.set_trigger(scope_trigger);
    scope.set_delay(0.0F);
    scope.start();

    const uint32_t app_task = task.createBackground(loop_application_task);
    const uint32_t com_task = task.createBackground(loop_communication_task);
    task.createCritical(loop_critical_task, AC_GAINS_TS_US);
    task.startBackground(app_task);
    task.startBackground(com_task);
    task.startCritical();
}

int main(void)
{
    setup_routine();
    return 0;
}
