//go:build linux

package packaging

import (
	"fmt"
	"os"
	"syscall"
)

func ownerOf(fi os.FileInfo) string {
	st := fi.Sys().(*syscall.Stat_t)
	return fmt.Sprintf("%d:%d", st.Uid, st.Gid)
}
