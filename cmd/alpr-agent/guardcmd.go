package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/alpr-agent/alpr-agent/audit"
	"github.com/alpr-agent/alpr-agent/hotlist"
	"github.com/alpr-agent/alpr-agent/spool"
)

// cmdHotlist: keygen, sign and verify signed hotlists and config patches
// (the central side's tools; a device only needs the public key).
func cmdHotlist(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "alpr-agent hotlist: keygen PRIV PUB | sign [--kind hotlist|config] --key PRIV DOC | verify --pub PUB FILE")
		return errUsage
	}
	switch args[0] {
	case "keygen":
		fs := newFlagSet("hotlist keygen", stderr)
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if fs.NArg() != 2 {
			fmt.Fprintln(stderr, "alpr-agent hotlist keygen: give PRIVATE-KEY-FILE PUBLIC-KEY-FILE")
			return errUsage
		}
		id, err := hotlist.WriteKeyPair(fs.Arg(0), fs.Arg(1))
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "key %s: private %s (keep it central), public %s (hotlist.public_key_file on devices)\n", id, fs.Arg(0), fs.Arg(1))
		return nil
	case "sign":
		fs := newFlagSet("hotlist sign", stderr)
		kind := fs.String("kind", hotlist.KindHotlist, "document kind: hotlist or config")
		key := fs.String("key", "", "private key file (from hotlist keygen)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if fs.NArg() != 1 || *key == "" {
			fmt.Fprintln(stderr, "alpr-agent hotlist sign: give --key PRIV and one document (JSON)")
			return errUsage
		}
		env, err := hotlist.SignFile(*kind, fs.Arg(0), *key)
		if err != nil {
			return err
		}
		_, err = stdout.Write(append(env, '\n'))
		return err
	case "verify":
		fs := newFlagSet("hotlist verify", stderr)
		pub := fs.String("pub", "", "public key file")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if fs.NArg() != 1 || *pub == "" {
			fmt.Fprintln(stderr, "alpr-agent hotlist verify: give --pub PUB and one signed file")
			return errUsage
		}
		kind, keyID, doc, err := hotlist.VerifyFile(fs.Arg(0), *pub)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "ok: %s signed by key %s, %d bytes\n", kind, keyID, len(doc))
		return nil
	}
	fmt.Fprintf(stderr, "alpr-agent hotlist: unknown subcommand %q\n", args[0])
	return errUsage
}

// cmdAudit: `audit verify [--hmac-key-file F] FILE` checks the chain and
// names the first tampered, missing or reordered line. Exit 0 intact, 1
// tampered or truncated.
func cmdAudit(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "verify" {
		fmt.Fprintln(stderr, "alpr-agent audit: verify [--hmac-key-file F] FILE")
		return errUsage
	}
	fs := newFlagSet("audit verify", stderr)
	keyFile := fs.String("hmac-key-file", "", "the device's audit.hmac_key_file, if the chain is keyed")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "alpr-agent audit verify: give one log file")
		return errUsage
	}
	var key []byte
	if *keyFile != "" {
		k, err := spool.LoadKeyFile(*keyFile)
		if err != nil {
			return fmt.Errorf("--hmac-key-file: %w", err)
		}
		key = k
	}
	rep, err := audit.VerifyKey(fs.Arg(0), key)
	if errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err != nil || !rep.OK() {
		fmt.Fprintf(stdout, "TAMPERED: %s: line %d (byte %d): %s; %d entries verified before it\n", fs.Arg(0), rep.Line, rep.Offset, rep.Problem, rep.Entries)
		if rep.TruncatedTail {
			fmt.Fprintln(stdout, "the last line is cut short (a power cut during a write?) and no recovery entry records it yet: the agent records it at its next start")
		}
		return errSilent
	}
	fmt.Fprintf(stdout, "ok: %s: %d entries, last seq %d, head %s, %d recovered cut-short line(s)\n", fs.Arg(0), rep.Entries, rep.LastSeq, rep.LastHash, rep.Recoveries)
	return nil
}
