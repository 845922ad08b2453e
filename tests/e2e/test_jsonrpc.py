"""JSON-RPC 2.0, the whole specification: calls, notifications, batches, every standard error,
ids echoed exactly, and hostile bodies (invalid UTF-8, deep nesting, trailing garbage)."""
import json

from harness import ServerTest, claims, make_jwt, main

UNKNOWN = "550e8400-e29b-41d4-a716-446655440000"


class JsonRpcTest(ServerTest):
    CONFIG = "return { limits = { max_json_depth = 32 } }"

    def raw(self, data):
        return self.server.post(data, make_jwt(claims()), raw=True)

    def status_call(self, id):
        return {"jsonrpc": "2.0", "method": "training.get_status", "params": {"job_id": UNKNOWN}, "id": id}

    def test_single_call(self):
        status, headers, resp = self.server.post(self.status_call("abc"), make_jwt(claims()))
        self.assertEqual(status, 200)
        self.assertEqual(resp["jsonrpc"], "2.0")
        self.assertEqual(resp["id"], "abc")
        self.assertError(resp, -32001, "job_id")
        self.assertEqual(headers["content-type"], "application/json")

    def test_ids_echoed_exactly(self):
        for id in ["x", "", 0, -7, 12345678901234, 1.5, None, "ünïcödé"]:
            status, _, resp = self.server.post(self.status_call(id), make_jwt(claims()))
            self.assertEqual(resp["id"], id, id)
            self.assertEqual(type(resp["id"]), type(id), id)

    def test_bad_id_type_is_invalid_request(self):
        for id in [[1], {"a": 1}, True]:
            _, _, resp = self.server.post(self.status_call(id), make_jwt(claims()))
            self.assertError(resp, -32600, "id")
            self.assertIsNone(resp["id"])

    def test_notification_gets_204_and_no_body(self):
        call = self.status_call(None)
        del call["id"]
        status, _, resp = self.server.post(call, make_jwt(claims()))
        self.assertEqual(status, 204)
        self.assertIsNone(resp)
        # even one for an unknown method
        status, _, resp = self.server.post({"jsonrpc": "2.0", "method": "no.such"}, make_jwt(claims()))
        self.assertEqual(status, 204)

    def test_batch(self):
        note = self.status_call(None)
        del note["id"]
        batch = [self.status_call(1), note, {"jsonrpc": "2.0", "method": "nope", "id": 2}, 5,
                 {"jsonrpc": "1.0", "method": "training.get_status", "id": 3}]
        status, _, resp = self.server.post(batch, make_jwt(claims()))
        self.assertEqual(status, 200)
        self.assertIsInstance(resp, list)
        self.assertEqual(len(resp), 4)  # the notification has no response
        by_id = {r["id"]: r for r in resp if r["id"] is not None}
        self.assertEqual(by_id[1]["error"]["code"], -32001)
        self.assertEqual(by_id[2]["error"]["code"], -32601)
        self.assertEqual(by_id[3]["error"]["code"], -32600)
        self.assertEqual([r["error"]["code"] for r in resp if r["id"] is None], [-32600])

    def test_batch_of_notifications_is_204(self):
        note = self.status_call(None)
        del note["id"]
        status, _, resp = self.server.post([note, note], make_jwt(claims()))
        self.assertEqual(status, 204)
        self.assertIsNone(resp)

    def test_empty_batch_is_one_invalid_request(self):
        status, _, resp = self.server.post([], make_jwt(claims()))
        self.assertEqual(status, 200)
        self.assertIsInstance(resp, dict)
        self.assertError(resp, -32600)
        self.assertIsNone(resp["id"])

    def test_invalid_json_is_parse_error(self):
        for body in [b'{"jsonrpc": "2.0", "method"', b"not json", b'{"a":1} trailing', b"",
                     b'{"jsonrpc":"2.0","method":"x","id":1,"id":2}']:
            status, _, resp = self.raw(body)
            self.assertEqual(status, 200)
            self.assertError(resp, -32700)
            self.assertIsNone(resp["id"], body)

    def test_invalid_utf8_is_parse_error(self):
        status, _, resp = self.raw(b'{"jsonrpc":"2.0","method":"training.get_status","params":{"job_id":"\xff\xfe"},'
                                   b'"id":1}')
        self.assertError(resp, -32700)

    def test_deep_nesting_is_refused(self):
        status, _, resp = self.raw(b"[" * 33 + b"]" * 33)
        self.assertEqual(status, 200)
        self.assertError(resp, -32600)
        self.assertIn("nest", json.dumps(resp["error"]))
        status, _, resp = self.raw(b"[" * 100000)
        self.assertError(resp, -32600)

    def test_scalar_is_invalid_request(self):
        for body in [b"5", b'"x"', b"null", b"true"]:
            _, _, resp = self.raw(body)
            self.assertError(resp, -32600)

    def test_request_shape_errors(self):
        cases = [({"method": "training.get_status", "id": 1}, "jsonrpc"),
                 ({"jsonrpc": "2.0", "id": 1}, "method"),
                 ({"jsonrpc": "2.0", "method": 5, "id": 1}, "method"),
                 ({"jsonrpc": "2.0", "method": "training.get_status", "params": "x", "id": 1}, "params")]
        for req, field in cases:
            _, _, resp = self.server.post(req, make_jwt(claims()))
            self.assertError(resp, -32600, field)
            self.assertEqual(resp["id"], 1)

    def test_method_not_found(self):
        _, _, resp = self.server.call("training.nope", {})
        self.assertError(resp, -32601, "method")

    def test_invalid_params(self):
        cases = [({"job_id": 5}, "job_id"), ({"job_id": "not-a-uuid"}, "job_id"), ({}, "job_id"),
                 ({"job_id": UNKNOWN, "extra": 1}, "extra")]
        for params, field in cases:
            _, _, resp = self.server.call("training.get_status", params)
            self.assertError(resp, -32602, field)
        _, _, resp = self.server.call("training.get_status", [UNKNOWN])
        self.assertError(resp, -32602, "params")

    def test_huge_integer_parameters(self):
        _, _, resp = self.server.call("training.list_jobs", {"offset": 9223372036854775807})
        self.assertEqual(resp["result"]["returned_count"], 0)
        _, _, resp = self.server.call("training.list_jobs", {"limit": -9223372036854775808})
        self.assertError(resp, -32602, "limit")

    def test_long_unicode_method_name_keeps_error_data(self):
        _, _, resp = self.server.call("é" * 40, {})  # cut at 64 bytes: inside a character
        self.assertError(resp, -32601, "method")

    def test_error_messages_do_not_echo_control_characters(self):
        _, _, resp = self.server.call("bad\u0001\nname", {})
        self.assertError(resp, -32601)
        self.assertNotIn("\n", resp["error"]["message"])


if __name__ == "__main__":
    main()
