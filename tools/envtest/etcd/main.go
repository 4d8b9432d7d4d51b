// Command etcd is the etcd server built from its Go module, pinned by
// tools/versions.env, for Phoenix's test control plane.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
