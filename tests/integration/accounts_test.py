#!/usr/bin/python3
"""evertctl user and token against the real daemon with the web module, over its control socket:
users added with --password-stdin (hashed by evertctl, checked by evertd), listed, refused when
they exist, given a new password and deleted; API tokens created (shown once), listed without
their secret and revoked; all of it still there after a restart; clear errors for weak
passwords, bad names, unknown users and tokens, a daemon without the web module and no daemon.

Every wait is bounded; every process a test starts is stopped by PID, also when it fails."""
import json
import os
import subprocess
import unittest

import web_test
from everseed_test import ADDR, EVERTCTL


class AccountsTest(web_test.WebTest):
    def ctl(self, *args, password=None, sock=None):
        """(exit status, stdout, stderr) of evertctl; `password` goes to --password-stdin."""
        argv = [EVERTCTL, *args, "--socket", sock or self.sock]
        if password is not None:
            argv.append("--password-stdin")
        r = subprocess.run(argv, input=(password + "\n") if password is not None else None,
                           capture_output=True, text=True, timeout=60)
        return r.returncode, r.stdout, r.stderr

    def ok(self, *args, **kw):
        code, out, err = self.ctl(*args, **kw)
        self.assertEqual(code, 0, err)
        return out, err

    def users(self):
        out, _ = self.ok("user", "list", "--json")
        return {u["name"]: u for u in json.loads(out)["users"]}

    def tokens(self, *user):
        out, _ = self.ok("token", "list", *user, "--json")
        return {t["id"]: t for t in json.loads(out)["tokens"]}

    def test_users_are_added_listed_given_passwords_and_deleted(self):
        out, _ = self.ok("user", "add", "alice", "--admin", password="correct horse")
        self.assertEqual(out.strip(), "Added user alice (admin)")
        self.ok("user", "add", "bob", password="bob's password")
        users = self.users()
        self.assertEqual(sorted(users), ["alice", "bob"])
        self.assertTrue(users["alice"]["admin"])
        self.assertFalse(users["bob"]["admin"])
        out, _ = self.ok("user", "list")
        self.assertIn("alice", out)
        self.assertTrue(out.strip().endswith("2 users"), out)
        # No password or hash is ever shown.
        self.assertNotIn("argon2", json.dumps(self.api("GET", "/v1/users")))

        # A second alice: refused, clearly, before any password is asked for.
        code, _, err = self.ctl("user", "add", "alice")
        self.assertEqual(code, 1)
        self.assertIn("user 'alice' exists", err)
        # ... and by the daemon itself when asked directly.
        r = self.api("POST", "/v1/users", {"name": "alice", "password_hash": "x"})
        self.assertEqual(r["error"]["code"], "bad_hash")

        out, _ = self.ok("user", "passwd", "bob", password="a new password")
        self.assertIn("Changed the password of bob", out)
        self.assertIn("password of user bob set", self.read_log())
        code, _, err = self.ctl("user", "passwd", "carol", password="a new password")
        self.assertEqual(code, 1)
        self.assertIn("no user named 'carol'", err)

        self.ok("token", "create", "bob")
        out, _ = self.ok("user", "del", "bob")
        self.assertEqual(out.strip(), "Deleted user bob (0 sessions ended, 1 token revoked)")
        self.assertEqual(sorted(self.users()), ["alice"])
        self.assertEqual(self.tokens(), {})
        code, _, err = self.ctl("user", "del", "bob")
        self.assertEqual(code, 1)
        self.assertIn("no user named 'bob'", err)

    def test_tokens_are_shown_once_listed_without_secrets_and_revoked(self):
        self.ok("user", "add", "alice", password="correct horse")
        self.ok("user", "add", "bob", password="correct horse")
        out, err = self.ok("token", "create", "alice", "--label", "ci runner")
        token = out.strip()
        self.assertTrue(token.startswith("evt_") and len(token) == 47, token)
        self.assertIn("cannot be shown again", err)
        out, _ = self.ok("token", "create", "bob", "--json")
        bob_token = json.loads(out)

        tokens = self.tokens()
        self.assertEqual(len(tokens), 2)
        (alice_id,) = [i for i, t in tokens.items() if t["user"] == "alice"]
        self.assertEqual(tokens[alice_id]["label"], "ci runner")
        self.assertIsNone(tokens[alice_id]["last_used"])
        self.assertEqual(list(self.tokens("bob")), [bob_token["id"]])
        out, _ = self.ok("token", "list")
        self.assertNotIn(token, out)
        self.assertNotIn(bob_token["token"], out)
        self.assertIn("ci runner", out)
        self.assertNotIn(token, json.dumps(self.api("GET", "/v1/tokens")))

        out, _ = self.ok("token", "revoke", alice_id)
        self.assertEqual(out.strip(), f"Revoked token {alice_id} of alice")
        self.assertEqual(list(self.tokens()), [bob_token["id"]])
        code, _, err = self.ctl("token", "revoke", alice_id)
        self.assertEqual(code, 1)
        self.assertIn("no token has the id", err)
        code, _, err = self.ctl("token", "revoke", "not-an-id")
        self.assertEqual(code, 1)
        self.assertIn("not a token id", err)
        code, _, err = self.ctl("token", "create", "carol")
        self.assertEqual(code, 1)
        self.assertIn("no user named 'carol'", err)
        code, _, err = self.ctl("token", "list", "carol")
        self.assertEqual(code, 1)
        self.assertIn("no user named 'carol'", err)

    def test_users_and_tokens_survive_a_restart(self):
        self.ok("user", "add", "alice", "--admin", password="correct horse")
        self.ok("user", "add", "bob", password="correct horse")
        token_id = json.loads(self.ok("token", "create", "bob", "-l", "backup", "--json")[0])["id"]
        before = self.users()
        self.stop()
        self.start()
        self.assertEqual(self.users(), before)
        self.assertEqual(self.tokens()[token_id]["label"], "backup")
        self.assertIn("accounts: 2 users", self.read_log())
        self.ok("user", "del", "alice")
        self.stop()
        self.start()
        self.assertEqual(sorted(self.users()), ["bob"])

    def test_bad_input_and_missing_pieces_are_clear_errors(self):
        for password, why in (("short", "at least 8 characters"), ("", "the password is empty")):
            code, _, err = self.ctl("user", "add", "alice", password=password)
            self.assertEqual(code, 1, err)
            self.assertIn(why, err)
        code, _, err = self.ctl("user", "add", "Alice", password="correct horse")
        self.assertEqual(code, 2)
        self.assertIn("only a-z, 0-9, _, . and - are allowed", err)
        # No terminal to ask on, and no --password-stdin.
        r = subprocess.run([EVERTCTL, "user", "add", "alice", "--socket", self.sock],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 1)
        self.assertIn("--password-stdin", r.stderr)
        self.assertEqual(self.users(), {})
        for cmd in (["user"], ["token"], ["user", "add"], ["token", "revoke"]):
            self.assertEqual(self.ctl(*cmd)[0], 2, cmd)
        out, _ = self.ok("user", "add", "--help")
        self.assertIn("--password-stdin", out)

        # A daemon without the web module.
        root = os.path.join(self.root, "plain")
        proc, log, _ = self.spawn_evertd(root, f"""daemon:
  state_dir: {root}/state
  modules: [tracker]
control:
  socket: {root}/evertd.sock
  socket_group: ""
log:
  target: stderr
tracker:
  http_listen: ["{ADDR}:0"]
  udp_listen: ["{ADDR}:0"]
""")
        self.extra.append((proc, log))
        sock = os.path.join(root, "evertd.sock")
        for cmd in (["user", "list"], ["token", "list"], ["user", "del", "alice"]):
            code, _, err = self.ctl(*cmd, sock=sock)
            self.assertEqual(code, 1, cmd)
            self.assertIn("does not run the web module", err)
        code, out, _ = self.ctl("user", "add", "alice", "--json", password="correct horse",
                                sock=sock)
        self.assertEqual(json.loads(out)["error"]["code"], "module_not_running")

        # No daemon at all.
        code, _, err = self.ctl("user", "list", sock=os.path.join(self.root, "none.sock"))
        self.assertEqual(code, 1)
        self.assertIn("evertd is not running", err)


if __name__ == "__main__":
    unittest.main()
