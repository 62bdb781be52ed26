#!/bin/sh
# Smoke test of a running compose stack (`make up && make smoke`): within SMOKE_TIMEOUT_S
# seconds the system must have traded, i.e. Kafka holds orders and fills, ClickHouse holds
# ticks, orders and fills rows, and the dashboard answers. Exit 0 when all hold, 1 otherwise.
# Uses only the containers' own clients (kafka-get-offsets.sh, clickhouse-client) and curl.
set -u
COMPOSE=${COMPOSE:-docker compose -p hfl --env-file .env -f docker/compose.yaml}
SMOKE_TIMEOUT_S=${SMOKE_TIMEOUT_S:-180}
DASHBOARD_PORT=${DASHBOARD_PORT:-8050}
deadline=$(( $(date +%s) + SMOKE_TIMEOUT_S ))

kafka_records() {  # total records in a topic, summed over its partitions
    $COMPOSE exec -T kafka /opt/kafka/bin/kafka-get-offsets.sh \
        --bootstrap-server kafka:9092 --topic "$1" --time -1 2>/dev/null \
        | awk -F: '{ total += $3 } END { print total + 0 }'
}

table_rows() {  # rows after deduplication (FINAL) in hfl.<table>
    $COMPOSE exec -T clickhouse clickhouse-client \
        --query "SELECT count() FROM hfl.$1 FINAL" 2>/dev/null || echo 0
}

dashboard_up() {
    curl -fsS -o /dev/null "http://127.0.0.1:${DASHBOARD_PORT}/health/live"
}

while :; do
    orders=$(kafka_records hfl.orders); fills=$(kafka_records hfl.fills)
    ticks_rows=$(table_rows ticks); order_rows=$(table_rows orders); fill_rows=$(table_rows fills)
    if dashboard_up; then board=up; else board=down; fi
    now=$(date +%s)
    echo "smoke: kafka orders=$orders fills=$fills | clickhouse ticks=$ticks_rows" \
         "orders=$order_rows fills=$fill_rows | dashboard=$board | $(( deadline - now ))s left"
    if [ "$orders" -gt 0 ] && [ "$fills" -gt 0 ] && [ "$ticks_rows" -gt 0 ] \
        && [ "$order_rows" -gt 0 ] && [ "$fill_rows" -gt 0 ] && [ "$board" = up ]; then
        echo "smoke: PASS"
        exit 0
    fi
    if [ "$now" -ge "$deadline" ]; then
        echo "smoke: FAIL after ${SMOKE_TIMEOUT_S}s; service states:" >&2
        $COMPOSE ps >&2
        exit 1
    fi
    sleep 5
done
