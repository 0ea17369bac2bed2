/*
 * simba_library.h -- the C-code block interface as simbaflow's embedded engine
 * provides it.
 *
 * A SIMBA "C Code" block's code defines:
 *   void initialize(void);
 *   void calculate_outputs(double *outputs, double *inputs, double time, double time_step);
 *   void terminate(void);
 *   void *snapshot(snapshot_mode mode, void *snapshot_ptr);
 * and may define
 *   double next_discontinuity_event(double time, double time_step);
 * to announce the next time it needs to be called.
 *
 * The block's state lives in the code's own globals; the engine loads a
 * separate copy of the compiled code for each block so instances never share it.
 */
#ifndef SIMBA_LIBRARY_H
#define SIMBA_LIBRARY_H

#include <math.h>
#include <stddef.h>

typedef enum {
    SNAPSHOT_CREATE = 0, /* allocate a snapshot of the current state and return it */
    SNAPSHOT_UPDATE = 1, /* copy the current state into snapshot_ptr */
    SNAPSHOT_LOAD = 2,   /* restore the state from snapshot_ptr */
    SNAPSHOT_DELETE = 3  /* free snapshot_ptr */
} snapshot_mode;

void initialize(void);
void calculate_outputs(double *outputs, double *inputs, double time, double time_step);
void terminate(void);
void *snapshot(snapshot_mode mode, void *snapshot_ptr);

#endif /* SIMBA_LIBRARY_H */
