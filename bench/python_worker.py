#!/usr/bin/env python3
"""The worker a user would write instead of crmsync: confluent-kafka + requests.

Polls up to 500 messages, maps canonical CRM events to Replify operations,
sends one bulk request per action of the poll (upserts, then status
changes, then removals), and commits synchronously after each poll. Like
most such scripts it does not keep per-contact order within a poll (a
removal and a re-creation of one contact in the same poll are applied in
action order); crmsync does. Used by the benchmark as the baseline; it runs
until the group has consumed `--events` messages.
"""
import argparse
import json
import os
import sys
import time

import requests
from confluent_kafka import Consumer

ACTIONS = {
    "contact.created": "upsert",
    "contact.updated": "upsert",
    "contact.status_changed": "updateOnly",
    "contact.deleted": "remove",
}


def to_contact(event):
    contact = event.get("contact") or {}
    out = {}
    for field in ("firstName", "lastName", "email", "phone"):
        if contact.get(field):
            out[field] = contact[field]
    if event.get("status"):
        out["status"] = event["status"]
    if contact.get("properties"):
        out["contactMetadata"] = {k: str(v) for k, v in contact["properties"].items()}
    out["externalIdKey"] = event["externalIdKey"]
    out["externalIdValue"] = event["externalIdValue"]
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--url", required=True, help="Replify campaign contacts URL")
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--report", help="file for the seconds from first message to done")
    parser.add_argument("--session-timeout-ms", type=int,
                        help="session.timeout.ms (the bench's crash scenario: 4000)")
    args = parser.parse_args()

    session = requests.Session()
    headers = {"x-api-key": os.environ["REPLIFY_API_KEY"], "Content-Type": "application/json"}
    settings = {
        "bootstrap.servers": args.bootstrap,
        "group.id": args.group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    }
    if args.session_timeout_ms:
        settings["session.timeout.ms"] = args.session_timeout_ms
        settings["heartbeat.interval.ms"] = 300
    consumer = Consumer(settings)
    consumer.subscribe([args.topic])
    consumed = 0
    first = None

    def send(action, contacts):
        while True:
            response = session.post(args.url, json={"contacts": contacts, "action": action},
                                    headers=headers, timeout=30)
            if response.status_code < 500 and response.status_code != 429:
                return
    while consumed < args.events:
        messages = consumer.consume(num_messages=500, timeout=1.0)
        if not messages:
            continue
        if first is None:
            first = time.monotonic()
        by_action = {"upsert": [], "updateOnly": [], "remove": []}
        for message in messages:
            if message.error():
                continue
            consumed += 1
            try:
                event = json.loads(message.value())
                action = ACTIONS[event["kind"]]
            except (ValueError, KeyError, TypeError):
                continue
            by_action[action].append(to_contact(event))
        for action, contacts in by_action.items():
            if contacts:
                send(action, contacts)
        consumer.commit(asynchronous=False)
    active = time.monotonic() - first
    consumer.close()
    if args.report:
        with open(args.report, "w") as report:
            report.write(f"{active}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
