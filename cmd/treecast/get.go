package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	pb "github.com/treecast/treecast/proto/treecast/v1"
)

func init() { commands = append(commands, newGetCmd) }

func newGetCmd() *cobra.Command {
	var agent, out string
	c := &cobra.Command{
		Use:   "get DIGEST -o FILE",
		Short: "Copy an object from an agent's store into a file, verifying it",
		Long: `Fetch a complete object from an agent and write it to FILE. Every chunk is checked against the
manifest and the whole file against the digest; the file appears (by an atomic rename) only
once it is complete and verified, so a failed get leaves nothing behind.`,
		Example: `  treecast get sha256:9f86d0... -o app.tar --agent 10.0.0.5:7700`,
		Args:    cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if out == "" {
				return usageErr(errors.New("-o FILE is required"))
			}
			digest := args[0]
			if !strings.HasPrefix(digest, "sha256:") || len(digest) != len("sha256:")+64 {
				return usageErr(fmt.Errorf("digest %q: want sha256: followed by 64 hex digits", digest))
			}
			client, done, err := dialAgent(c, agent)
			if err != nil {
				return err
			}
			defer done()
			stream, err := client.Fetch(c.Context(), &pb.FetchRequest{Digest: digest})
			if err != nil {
				return fmt.Errorf("agent %s: %w", agent, err)
			}
			n, err := receiveObject(stream, digest, out)
			if err != nil {
				return fmt.Errorf("get %s: %w", digest, err)
			}
			fmt.Fprintf(c.ErrOrStderr(), "wrote %s (%d bytes, verified)\n", out, n)
			return nil
		},
	}
	agentFlag(c, &agent)
	c.Flags().StringVarP(&out, "output", "o", "", "file to write")
	return c
}

// receiveObject writes a Fetch stream to a temporary file beside out, checking every chunk
// against the manifest and the whole against the digest, then renames it to out.
func receiveObject(stream pb.Agent_FetchClient, digest, out string) (int64, error) {
	first, err := stream.Recv()
	if err != nil {
		return 0, err
	}
	m := first.GetManifest()
	if m == nil {
		return 0, errors.New("the agent did not send a manifest first")
	}
	if m.GetDigest() != digest {
		return 0, fmt.Errorf("the agent sent the manifest of %s", m.GetDigest())
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".part-*")
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp.Name()) // a no-op after the rename
	defer tmp.Close()
	whole := sha256.New()
	var n int64
	next := uint64(0)
	for {
		msg, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, err
		}
		ch := msg.GetChunk()
		if ch == nil {
			continue
		}
		if ch.GetIndex() != next || int(next) >= len(m.GetChunkHashes()) {
			return 0, fmt.Errorf("chunk %d arrived, expected %d", ch.GetIndex(), next)
		}
		sum := sha256.Sum256(ch.GetData())
		if !bytes.Equal(sum[:], m.GetChunkHashes()[next]) {
			return 0, fmt.Errorf("chunk %d does not match its hash in the manifest", next)
		}
		if _, err := tmp.Write(ch.GetData()); err != nil {
			return 0, err
		}
		whole.Write(ch.GetData())
		n += int64(len(ch.GetData()))
		next++
	}
	if n != int64(m.GetSize()) || int(next) != len(m.GetChunkHashes()) {
		return 0, fmt.Errorf("stream ended after %d of %d bytes", n, m.GetSize())
	}
	if got := "sha256:" + hex.EncodeToString(whole.Sum(nil)); got != digest {
		return 0, fmt.Errorf("the object's digest is %s", got)
	}
	if err := tmp.Sync(); err != nil {
		return 0, err
	}
	if err := tmp.Close(); err != nil {
		return 0, err
	}
	return n, os.Rename(tmp.Name(), out)
}
