/* The per-core worker loop: rx burst -> steer -> process -> batched tx ->
 * timers, until *stop. */
#ifndef TERN_WORKER_H
#define TERN_WORKER_H

#include "worker-t.h"

/* Wires w->net to this worker's mbuf pool and tx queue and w->tcp's output
 * and events to the net layer and the proxy. Called at start-up on the main
 * thread once w's fields (port, queue, pool, rings, steer) are set and
 * before worker_run. Returns 0 or -errno with a reason in err. */
int worker_init(struct worker *w, const struct net_iface *ifc,
                const struct tcp_stack_params *tp,
                const struct proxy_params *pp,
                const struct proxy_listener_cfg *listeners, unsigned n_listeners,
                char *err, size_t errlen);

/* Frees what worker_init created (the stack, the proxy, held frames).
 * After the loop stopped. */
void worker_fini(struct worker *w);

/* The loop; runs on w's lcore until *w->stop becomes non-zero. Returns 0. */
int worker_run(struct worker *w);

/* Processes one received frame on its owner core (fault knob, then
 * net_input). Exposed for the fuzz target, which drives a worker without a
 * device. `learn_only`: an ARP copy from a peer. Does not free m. */
void worker_input_frame(struct worker *w, const uint8_t *frame, uint32_t len,
                        unsigned flags);

/* Copies w's counters into w->stats (relaxed atomic stores). Owning lcore. */
void worker_publish_stats(struct worker *w);

#endif
