// Package run gives every long-lived goroutine an owner.
//
// An owner (a server, say) holds one Group and starts each of its
// goroutines with Group.Go. Shutting the owner down is two steps: Stop,
// after which Go starts nothing and the group's quit channel (Done) is
// closed, and Wait, which returns once every goroutine started by Go has
// returned. Because Go refuses after Stop, nothing can be started while
// the owner is waiting, and the owner's Close can wait without racing its
// own goroutines:
//
//	type Server struct {
//		group  run.Group
//		cancel context.CancelFunc
//	}
//
//	func Start() *Server {
//		ctx, cancel := context.WithCancel(context.Background())
//		s := &Server{cancel: cancel}
//		s.group.Go(func() { s.loop(ctx) })
//		return s
//	}
//
//	func (s *Server) Close() {
//		s.group.Stop()
//		s.cancel()
//		s.group.Wait()
//	}
//
// Long-lived loops receive their context as a parameter; the Group holds
// no context. Work that has no caller's context to derive from (a cleanup
// that must outlive a cancelled request, say) derives one from the quit
// channel with Group.Context.
package run
