// Package hotlist verifies signed hotlists and remote config patches and
// matches plates against the hotlist in use.
//
// What it owns:
//
//   - The signed envelope (Envelope): {"v":1,"kind":…,"key_id":…,
//     "payload":base64,"sig":base64}. The signature is Ed25519 over a fixed
//     context string, the kind and the exact payload bytes, so what is
//     verified is what was signed (no JSON canonicalisation), and a hotlist
//     cannot pass for a config patch. Keys: a device trusts the public keys
//     of its key file (PEM "PUBLIC KEY" blocks or base64 lines, several for
//     a rotation); KeyID names a key by the hash of its bytes.
//   - The hotlist document (Document): name, sequence number, issue time,
//     entries {plate, reason, list, expires}. Store.Apply rejects, with a
//     logged reason and without touching the list in use: too large (checked
//     before parsing), malformed, unknown key, bad or missing signature, an
//     invalid or duplicate plate, a sequence number not above the one in use
//     (replay), an issue time in the future beyond the clock skew. The same
//     envelope again (the retained message after a reconnect) is a no-op.
//     The accepted envelope is written atomically to disk and verified again
//     at Open, so a device that boots offline keeps its list.
//   - Matching (List.Match): exact after Normalize, or within a weighted
//     edit distance where substitutions between confusable characters
//     (O 0 D Q, I 1 L, B 8, S 5, Z 2, G 6) cost 0.25 and other edits 1;
//     expired entries never match. See match.go for the cost model and the
//     index.
//   - Remote config (ConfigStore): the same envelope, key and checks for the
//     signed config patch on the config topic; it returns the patch bytes (a
//     JSON object) and leaves deciding what may change to the agent.
//   - Signing helpers for the `alpr-agent hotlist` subcommands and tests:
//     WriteKeyPair (keygen), SignFile (sign), VerifyFile (verify), and
//     GenerateKey, SignHotlist, SignConfig, SignDocument, Inspect.
//
// Caveats: Store checks the issue time against Config.Now; a board without
// an RTC must pass a GNSS-corrected clock or a list issued "now" may look
// years in the future. Sequence numbers are the issuer's to keep monotonic
// across all lists sent to a device: one retained topic carries one
// document, which replaces the whole list.
package hotlist
