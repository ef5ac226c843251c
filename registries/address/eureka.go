package address

import (
	"fmt"
	"strings"
)

// Eureka checks a Eureka server's address as the eureka adapter takes it:
// host:port (the scheme and the REST API's context path are settings of
// their own, so a URL is refused), with a host and a port in 1-65535.
// Errors quote the address and say the problem.
func Eureka(addr string) error {
	if strings.Contains(addr, "://") || strings.Contains(addr, "/") {
		return fmt.Errorf("%q: a URL or a path; want host:port (scheme and context path are settings of their own)", addr)
	}
	if err := checkServer(strings.TrimSpace(addr)); err != nil {
		return fmt.Errorf("%q: %v", addr, err)
	}
	return nil
}
