/*
 * header_use: typical use of phasecast.h, compiled as C99 and as C++11
 * (-x c++) with -Wall -Wextra -Werror -pedantic, linked and run: the
 * header's types (enums with a fixed underlying type in C++, the event
 * union, opaque handles) work the same from both languages.
 */
#include <stdio.h>
#include <string.h>

#include "phasecast.h"

int main(void) {
    static const uint16_t members[2] = {1, 2};
    phasecast_config cfg;
    phasecast_node *a = NULL, *b = NULL;
    phasecast_transmit tx;
    phasecast_event ev;
    uint8_t buf[1400];
    int delivered = 0, round;
    if (phasecast_config_init(&cfg, 1, members, 2) != PHASECAST_OK)
        return 1;
    if (phasecast_node_create(&cfg, 0, &a) != PHASECAST_OK)
        return 1;
    cfg.id = 2;
    if (phasecast_node_create(&cfg, 0, &b) != PHASECAST_OK)
        return 1;
    if (phasecast_node_broadcast(a, 1, (const uint8_t *)"hi", 2, NULL) != PHASECAST_OK)
        return 1;
    for (round = 0; round < 10; round++) {
        while (phasecast_node_poll_transmit(a, 1, buf, sizeof buf, &tx) == PHASECAST_OK)
            phasecast_node_handle_datagram(b, 1, 1, buf, tx.len, NULL);
        while (phasecast_node_poll_transmit(b, 1, buf, sizeof buf, &tx) == PHASECAST_OK)
            phasecast_node_handle_datagram(a, 1, 2, buf, tx.len, NULL);
        while (phasecast_node_poll_event(b, &ev) == PHASECAST_OK) {
            switch (ev.kind) {
            case PHASECAST_EVENT_DELIVERED:
                delivered += ev.data.delivered.payload_len == 2 &&
                             memcmp(ev.data.delivered.payload, "hi", 2) == 0;
                break;
            case PHASECAST_EVENT_VIEW_CHANGED:
            case PHASECAST_EVENT_RECEIVED:
            case PHASECAST_EVENT_SUSPECTED:
            case PHASECAST_EVENT_EXCLUDED:
            case PHASECAST_EVENT_BANDWIDTH_CHANGED:
            case PHASECAST_EVENT_GROUP_DELIVERED:
            case PHASECAST_EVENT_UNSUPPORTED:
                break;
            }
        }
    }
    phasecast_node_destroy(&a);
    phasecast_node_destroy(&b);
    printf("header_use (%s): delivered %d\n",
#ifdef __cplusplus
           "C++",
#else
           "C",
#endif
           delivered);
    return delivered == 1 ? 0 : 1;
}
