package browser

import (
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
)

// Bounds of what a console keeps: a page that logs in a loop must not
// fill the test's memory or its log.
const (
	maxMessages    = 1000
	maxMessageText = 2000
)

// MessageKind is where a console message came from.
type MessageKind string

// The kinds of console messages.
const (
	// KindConsole is a call of the console API: console.log, .warn, .error…
	KindConsole MessageKind = "console"
	// KindException is an uncaught exception or an unhandled promise rejection.
	KindException MessageKind = "exception"
	// KindBrowser is an entry of the browser's own log, e.g. a resource
	// that failed to load or a security warning.
	KindBrowser MessageKind = "browser"
)

// Message is one line of the page's console.
type Message struct {
	Kind  MessageKind
	Level string // console: log, warning, error…; browser: verbose, info, warning, error; exception: ""
	Text  string // bounded
	Where string // url:line where known
}

// String is the message as the test log shows it.
func (m Message) String() string {
	s := string(m.Kind)
	if m.Level != "" {
		s += "." + m.Level
	}
	s += ": " + m.Text
	if m.Where != "" {
		s += " (" + m.Where + ")"
	}
	return s
}

// console collects a tab's messages and the requests it made beyond
// loopback. record runs in chromedp's event loop for the tab, so it only
// appends under the lock.
type console struct {
	mu      sync.Mutex
	msgs    []Message
	dropped int
	outside []string // at most maxBlocked
}

// record is the chromedp.Listen callback.
func (c *console) record(ev any) {
	var m Message
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		m = Message{Kind: KindConsole, Level: string(ev.Type), Text: argsText(ev.Args)}
		if st := ev.StackTrace; st != nil && len(st.CallFrames) > 0 {
			m.Where = where(st.CallFrames[0].URL, st.CallFrames[0].LineNumber)
		}
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		m = Message{Kind: KindException, Text: d.Text, Where: where(d.URL, d.LineNumber)}
		if d.Exception != nil {
			// Text is "Uncaught" or "Uncaught (in promise)"; the
			// description holds the error, its message and its stack.
			m.Text += " " + remoteText(d.Exception)
		}
	case *log.EventEntryAdded:
		e := ev.Entry
		m = Message{Kind: KindBrowser, Level: string(e.Level), Text: e.Text, Where: where(e.URL, e.LineNumber)}
	case *network.EventRequestWillBeSent:
		if r := ev.Request; r != nil && !local(r.URL) {
			c.mu.Lock()
			defer c.mu.Unlock()
			if len(c.outside) < maxBlocked {
				c.outside = append(c.outside, r.Method+" "+bound(r.URL, 200))
			}
		}
		return
	default:
		return
	}
	m.Text = bound(m.Text, maxMessageText)
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.msgs) >= maxMessages {
		c.dropped++
		return
	}
	c.msgs = append(c.msgs, m)
}

// list returns the messages so far and how many were not kept.
func (c *console) list() ([]Message, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Message(nil), c.msgs...), c.dropped
}

// blocked returns the page's requests beyond loopback.
func (c *console) blocked() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.outside...)
}

// local reports whether a request for rawURL stays on the machine: a
// loopback host, or a scheme without a network (data:, blob:, about:…).
func local(rawURL string) bool {
	u, err := url.Parse(rawURL)
	if err != nil {
		return false
	}
	switch u.Scheme {
	case "http", "https", "ws", "wss":
	default:
		return true
	}
	h := u.Hostname()
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func where(url string, line int64) string {
	if url == "" {
		return ""
	}
	return fmt.Sprintf("%s:%d", url, line+1) // the protocol counts lines from 0
}

// argsText joins console arguments the plain way: strings as they are,
// other values as JSON or as the browser describes them.
func argsText(args []*runtime.RemoteObject) string {
	parts := make([]string, 0, len(args))
	for _, a := range args {
		parts = append(parts, remoteText(a))
	}
	return strings.Join(parts, " ")
}

func remoteText(o *runtime.RemoteObject) string {
	if len(o.Value) > 0 {
		var s string
		if json.Unmarshal(o.Value, &s) == nil {
			return s
		}
		return string(o.Value)
	}
	if o.UnserializableValue != "" {
		return string(o.UnserializableValue)
	}
	if o.Description != "" {
		return o.Description
	}
	return string(o.Type)
}
