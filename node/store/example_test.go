package store_test

import (
	"bytes"
	"errors"
	"fmt"
	"log"
	"os"
	"strings"

	"github.com/treecast/treecast/node/store"
)

// A source puts an object in its store; a receiver gets the manifest, writes the chunks as
// they arrive (in any order, each verified), and commits: only then is the object visible.
func Example() {
	srcDir, _ := os.MkdirTemp("", "treecast-src")
	dstDir, _ := os.MkdirTemp("", "treecast-dst")
	defer os.RemoveAll(srcDir)
	defer os.RemoveAll(dstDir)

	src, err := store.Open(srcDir)
	if err != nil {
		log.Fatal(err)
	}
	m, err := src.Put(strings.NewReader("hello, many receivers"), 8)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(m.Digest, m.Size, "bytes in", m.NumChunks(), "chunks")

	dst, err := store.Open(dstDir)
	if err != nil {
		log.Fatal(err)
	}
	p, err := dst.Begin(m) // resumes if a previous run left chunks
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()
	err = p.WriteChunk(1, []byte("tampered"))
	fmt.Println("tampered chunk rejected:", errors.Is(err, store.ErrChunkCorrupt))
	for _, i := range []int{2, 0, 1} {
		chunk, _ := src.ReadChunk(m.Digest, i)
		if err := p.WriteChunk(i, chunk); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Println("visible before commit:", dst.Has(m.Digest))
	if err := p.Commit(); err != nil {
		log.Fatal(err)
	}
	f, _ := dst.Open(m.Digest)
	defer f.Close()
	var buf bytes.Buffer
	buf.ReadFrom(f)
	fmt.Println("visible after commit:", dst.Has(m.Digest), buf.String())
	// Output:
	// sha256:16a2d1cc1820819cdf03f2127af8f6832f75942c624540d7ba842b5f09133abb 21 bytes in 3 chunks
	// tampered chunk rejected: true
	// visible before commit: false
	// visible after commit: true hello, many receivers
}
