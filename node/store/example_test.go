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

// A receiver that stops mid-transfer resumes where it was: Begin on the reopened store
// returns the chunks it had verified, so a parent sends only the others.
func ExampleStore_Begin_resume() {
	dir, _ := os.MkdirTemp("", "treecast-resume")
	defer os.RemoveAll(dir)
	object := []byte(strings.Repeat("0123456789", 10))
	m, _ := store.NewManifest(bytes.NewReader(object), 10)

	s, _ := store.Open(dir)
	p, _ := s.Begin(m)
	for _, i := range []int{0, 1, 5} {
		p.WriteChunk(i, object[i*10:i*10+10])
	}
	p.Close() // the agent stops; nothing is visible
	s.Close()

	s, _ = store.Open(dir)
	p, _ = s.Begin(m)
	defer p.Close()
	held := p.Held()
	fmt.Println("held after restart:", held.Indexes())
	fmt.Printf("bitmap for the Push header: %08b\n", held.Bytes())
	// Output:
	// held after restart: [0 1 5]
	// bitmap for the Push header: [00100011 00000000]
}

// A manifest received from the network is validated before anything is written: here it
// claims more bytes than its chunk hashes cover.
func ExampleManifestFromProto() {
	m, _ := store.NewManifest(strings.NewReader("twelve bytes"), 4)
	wire := m.Proto()
	wire.Size = 100 // a lie: 3 hashes cannot cover 100 bytes in chunks of 4
	_, err := store.ManifestFromProto(wire)
	fmt.Println(errors.Is(err, store.ErrBadManifest))
	fmt.Println(err)
	// Output:
	// true
	// store: bad manifest: sha256:d4ce2c527afe674c7a086bd74e256019e3d5dcdb31eeb6eaadef5ada8c4383b9: 3 chunk hashes for size 100 and chunk size 4 (want 25)
}
