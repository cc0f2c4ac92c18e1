package resources

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/httpstream/wsstream"
	"k8s.io/apimachinery/pkg/util/proxy"
	"k8s.io/apimachinery/pkg/util/validation/field"
	streamproxy "k8s.io/apiserver/pkg/util/proxy"

	"github.com/wasmkube/wasmkube/control/registry"
)

// Kubelet is how the API server reaches node agents for pods/log,
// pods/exec, pods/attach and pods/portforward.
type Kubelet struct {
	// Transport carries the API server's kubelet-client certificate.
	Transport *http.Transport
	// Node reads a Node, for its address and kubelet port.
	Node func(ctx context.Context, name string) (*corev1.Node, error)
}

// defaultKubeletPort is used for a Node that reports none.
const defaultKubeletPort = 10250

// defaultContainerAnnotation names the container kubectl picks when none is
// given; the API server honours it too.
const defaultContainerAnnotation = "kubectl.kubernetes.io/default-container"

// podStreams adds the connecter subresources, listed as upstream's
// discovery does.
func podStreams(k *Kubelet) option {
	return func(s *registry.Strategy) {
		s.Subresources = append(s.Subresources,
			registry.Subresource{Name: "attach", Kind: coreV1.WithKind("PodAttachOptions"), Verbs: []string{"create", "get"}, Connect: k.attach},
			registry.Subresource{Name: "exec", Kind: coreV1.WithKind("PodExecOptions"), Verbs: []string{"create", "get"}, Connect: k.exec},
			registry.Subresource{Name: "log", Kind: coreV1.WithKind("Pod"), Verbs: []string{"get"}, Connect: k.log},
			registry.Subresource{Name: "portforward", Kind: coreV1.WithKind("PodPortForwardOptions"), Verbs: []string{"create", "get"}, Connect: k.portForward},
		)
	}
}

// optionQuery reads the query parameters of PodLogOptions,
// PodExecOptions, PodAttachOptions and PodPortForwardOptions as upstream's
// conversions do; a malformed value is a 400.
type optionQuery struct {
	q   url.Values
	err error
}

func (o *optionQuery) str(k string) string { return o.q.Get(k) }

func (o *optionQuery) boolean(k string) bool {
	v := o.q.Get(k)
	if v == "" || o.err != nil {
		return false
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		o.err = apierrors.NewBadRequest(fmt.Sprintf("%s: invalid boolean %q", k, v))
	}
	return b
}

func (o *optionQuery) int64p(k string) *int64 {
	v := o.q.Get(k)
	if v == "" || o.err != nil {
		return nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		o.err = apierrors.NewBadRequest(fmt.Sprintf("%s: invalid integer %q", k, v))
		return nil
	}
	return &n
}

func logOptions(q url.Values) (corev1.PodLogOptions, error) {
	o := &optionQuery{q: q}
	opts := corev1.PodLogOptions{
		Container: o.str("container"), Follow: o.boolean("follow"), Previous: o.boolean("previous"),
		Timestamps: o.boolean("timestamps"), SinceSeconds: o.int64p("sinceSeconds"),
		TailLines: o.int64p("tailLines"), LimitBytes: o.int64p("limitBytes"),
	}
	if v := q.Get("sinceTime"); v != "" && o.err == nil {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return opts, apierrors.NewBadRequest(fmt.Sprintf("sinceTime: %v", err))
		}
		mt := metav1.NewTime(t)
		opts.SinceTime = &mt
	}
	return opts, o.err
}

func execOptions(q url.Values) (corev1.PodExecOptions, error) {
	o := &optionQuery{q: q}
	opts := corev1.PodExecOptions{
		Container: o.str("container"), Stdin: o.boolean("stdin"), Stdout: o.boolean("stdout"),
		Stderr: o.boolean("stderr"), TTY: o.boolean("tty"), Command: q["command"],
	}
	return opts, o.err
}

func attachOptions(q url.Values) (corev1.PodAttachOptions, error) {
	o := &optionQuery{q: q}
	opts := corev1.PodAttachOptions{
		Container: o.str("container"), Stdin: o.boolean("stdin"), Stdout: o.boolean("stdout"),
		Stderr: o.boolean("stderr"), TTY: o.boolean("tty"),
	}
	return opts, o.err
}

func portForwardOptions(q url.Values) (corev1.PodPortForwardOptions, error) {
	var opts corev1.PodPortForwardOptions
	for _, v := range q["ports"] {
		for _, p := range strings.Split(v, ",") {
			n, err := strconv.ParseInt(strings.TrimSpace(p), 10, 32)
			if err != nil {
				return opts, apierrors.NewBadRequest(fmt.Sprintf("ports: invalid port %q", p))
			}
			opts.Ports = append(opts.Ports, int32(n))
		}
	}
	return opts, nil
}

// container picks the request's container as upstream does: the one named
// (which must be in the pod), else the default-container annotation's,
// else the only one.
func container(pod *corev1.Pod, name string) (string, error) {
	if name == "" {
		if d := pod.Annotations[defaultContainerAnnotation]; d != "" && hasContainer(pod, d) {
			return d, nil
		}
		switch len(pod.Spec.Containers) {
		case 1:
			return pod.Spec.Containers[0].Name, nil
		case 0:
			return "", apierrors.NewBadRequest(fmt.Sprintf("a container name must be specified for pod %s", pod.Name))
		}
		msg := fmt.Sprintf("a container name must be specified for pod %s, choose one of: [%s]", pod.Name, containerNames(pod.Spec.Containers))
		if len(pod.Spec.InitContainers) > 0 {
			msg += fmt.Sprintf(" or one of the init containers: [%s]", containerNames(pod.Spec.InitContainers))
		}
		return "", apierrors.NewBadRequest(msg)
	}
	if !hasContainer(pod, name) {
		return "", apierrors.NewBadRequest(fmt.Sprintf("container %s is not valid for pod %s", name, pod.Name))
	}
	return name, nil
}

func containerNames(cs []corev1.Container) string {
	names := make([]string, len(cs))
	for i, c := range cs {
		names[i] = c.Name
	}
	return strings.Join(names, " ")
}

func hasContainer(pod *corev1.Pod, name string) bool {
	for _, cs := range [][]corev1.Container{pod.Spec.Containers, pod.Spec.InitContainers} {
		for _, c := range cs {
			if c.Name == name {
				return true
			}
		}
	}
	for _, c := range pod.Spec.EphemeralContainers {
		if c.Name == name {
			return true
		}
	}
	return false
}

// location is the node agent's URL for path, from the Node's InternalIP
// (or another address when it has none) and its kubelet port.
func (k *Kubelet) location(ctx context.Context, pod *corev1.Pod, path string, query url.Values) (*url.URL, error) {
	if k == nil || k.Transport == nil {
		return nil, apierrors.NewServiceUnavailable("no connection to node agents is configured")
	}
	node, err := k.Node(ctx, pod.Spec.NodeName)
	if err != nil {
		return nil, err
	}
	host := ""
	for _, t := range []corev1.NodeAddressType{corev1.NodeInternalIP, corev1.NodeHostName, corev1.NodeInternalDNS, corev1.NodeExternalDNS, corev1.NodeExternalIP} {
		for _, a := range node.Status.Addresses {
			if a.Type == t && host == "" {
				host = a.Address
			}
		}
	}
	if host == "" {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("node %s has no address", node.Name))
	}
	port := int(node.Status.DaemonEndpoints.KubeletEndpoint.Port)
	if port == 0 {
		port = defaultKubeletPort
	}
	return &url.URL{Scheme: "https", Host: net.JoinHostPort(host, strconv.Itoa(port)), Path: path, RawQuery: query.Encode()}, nil
}

func (k *Kubelet) log(ctx context.Context, parent runtime.Object, query url.Values, fail func(http.ResponseWriter, error)) (http.Handler, error) {
	pod := parent.(*corev1.Pod)
	opts, err := logOptions(query)
	if err != nil {
		return nil, err
	}
	if err := validateLogOptions(pod.Name, &opts); err != nil {
		return nil, err
	}
	name, err := container(pod, opts.Container)
	if err != nil {
		return nil, err
	}
	if pod.Spec.NodeName == "" {
		// Not scheduled yet: no logs, as upstream answers.
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(http.StatusOK)
		}), nil
	}
	params := url.Values{}
	if opts.Follow {
		params.Set("follow", "true")
	}
	if opts.Previous {
		params.Set("previous", "true")
	}
	if opts.Timestamps {
		params.Set("timestamps", "true")
	}
	if opts.SinceSeconds != nil {
		params.Set("sinceSeconds", strconv.FormatInt(*opts.SinceSeconds, 10))
	}
	if opts.SinceTime != nil {
		params.Set("sinceTime", opts.SinceTime.Format(time.RFC3339))
	}
	if opts.TailLines != nil {
		params.Set("tailLines", strconv.FormatInt(*opts.TailLines, 10))
	}
	if opts.LimitBytes != nil {
		params.Set("limitBytes", strconv.FormatInt(*opts.LimitBytes, 10))
	}
	loc, err := k.location(ctx, pod, fmt.Sprintf("/containerLogs/%s/%s/%s", pod.Namespace, pod.Name, name), params)
	if err != nil {
		return nil, err
	}
	return &logStreamer{transport: k.Transport, location: loc, pod: pod.Name, fail: fail}, nil
}

func validateLogOptions(name string, o *corev1.PodLogOptions) error {
	var errs field.ErrorList
	if o.TailLines != nil && *o.TailLines < 0 {
		errs = append(errs, field.Invalid(field.NewPath("tailLines"), *o.TailLines, "must be greater than or equal to 0"))
	}
	if o.LimitBytes != nil && *o.LimitBytes < 1 {
		errs = append(errs, field.Invalid(field.NewPath("limitBytes"), *o.LimitBytes, "must be greater than 0"))
	}
	if o.SinceSeconds != nil && o.SinceTime != nil {
		errs = append(errs, field.Forbidden(field.NewPath(""), "at most one of `sinceTime` or `sinceSeconds` may be specified"))
	}
	if o.SinceSeconds != nil && *o.SinceSeconds < 1 {
		errs = append(errs, field.Invalid(field.NewPath("sinceSeconds"), *o.SinceSeconds, "must be greater than 0"))
	}
	if len(errs) > 0 {
		return apierrors.NewInvalid(schema.GroupKind{Kind: "PodLogOptions"}, name, errs)
	}
	return nil
}

// logStreamer copies the agent's log response to the client, flushing as
// it goes so a follower sees each line at once.
type logStreamer struct {
	transport http.RoundTripper
	location  *url.URL
	pod       string
	fail      func(http.ResponseWriter, error)
}

// maxErrorBody bounds how much of an agent's error is read.
const maxErrorBody = 4096

func (s *logStreamer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, s.location.String(), nil)
	if err != nil {
		s.fail(w, apierrors.NewInternalError(err))
		return
	}
	resp, err := s.transport.RoundTrip(req)
	if err != nil {
		s.fail(w, apierrors.NewInternalError(fmt.Errorf("get logs from the node: %w", err)))
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		text := strings.TrimSpace(string(body))
		var err error
		switch resp.StatusCode {
		case http.StatusInternalServerError:
			err = apierrors.NewInternalError(fmt.Errorf("%s", text))
		case http.StatusBadRequest:
			err = apierrors.NewBadRequest(text)
		default:
			err = apierrors.NewGenericServerResponse(resp.StatusCode, "", corev1.Resource("pods/log"), s.pod, text, 0, false)
		}
		s.fail(w, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	if flusher != nil {
		flusher.Flush()
	}
	buf := make([]byte, 32*1024)
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			if flusher != nil {
				flusher.Flush()
			}
		}
		if err != nil {
			return
		}
	}
}

// streamQuery is the agent's query for exec and attach.
func streamQuery(stdin, stdout, stderr, tty bool, command []string) url.Values {
	q := url.Values{}
	for k, on := range map[string]bool{corev1.ExecStdinParam: stdin, corev1.ExecStdoutParam: stdout, corev1.ExecStderrParam: stderr, corev1.ExecTTYParam: tty} {
		if on {
			q.Set(k, "1")
		}
	}
	for _, c := range command {
		q.Add(corev1.ExecCommandParam, c)
	}
	return q
}

func streamPod(pod *corev1.Pod) error {
	if pod.Spec.NodeName == "" {
		return apierrors.NewBadRequest(fmt.Sprintf("pod %s does not have a host assigned", pod.Name))
	}
	return nil
}

// upgradeHandler proxies an upgraded (SPDY) connection to the agent; a
// websocket client of the stream-close protocol goes through translator
// instead.
func (k *Kubelet) upgradeHandler(loc *url.URL, fail func(http.ResponseWriter, error)) *proxy.UpgradeAwareHandler {
	h := proxy.NewUpgradeAwareHandler(loc, k.Transport, false, true, responder(fail))
	return h
}

type responder func(http.ResponseWriter, error)

func (f responder) Error(w http.ResponseWriter, _ *http.Request, err error) {
	f(w, apierrors.NewInternalError(err))
}

func (k *Kubelet) exec(ctx context.Context, parent runtime.Object, query url.Values, fail func(http.ResponseWriter, error)) (http.Handler, error) {
	pod := parent.(*corev1.Pod)
	opts, err := execOptions(query)
	if err != nil {
		return nil, err
	}
	if len(opts.Command) == 0 {
		return nil, apierrors.NewBadRequest("you must specify at least one command for the container")
	}
	if !opts.Stdin && !opts.Stdout && !opts.Stderr {
		return nil, apierrors.NewBadRequest("you must specify at least 1 of stdin, stdout, stderr")
	}
	name, err := container(pod, opts.Container)
	if err != nil {
		return nil, err
	}
	if err := streamPod(pod); err != nil {
		return nil, err
	}
	loc, err := k.location(ctx, pod, fmt.Sprintf("/exec/%s/%s/%s", pod.Namespace, pod.Name, name),
		streamQuery(opts.Stdin, opts.Stdout, opts.Stderr, opts.TTY, opts.Command))
	if err != nil {
		return nil, err
	}
	return k.remoteCommand(loc, streamproxy.Options{Stdin: opts.Stdin, Stdout: opts.Stdout, Stderr: opts.Stderr, Tty: opts.TTY}, fail), nil
}

func (k *Kubelet) attach(ctx context.Context, parent runtime.Object, query url.Values, fail func(http.ResponseWriter, error)) (http.Handler, error) {
	pod := parent.(*corev1.Pod)
	opts, err := attachOptions(query)
	if err != nil {
		return nil, err
	}
	name, err := container(pod, opts.Container)
	if err != nil {
		return nil, err
	}
	if err := streamPod(pod); err != nil {
		return nil, err
	}
	loc, err := k.location(ctx, pod, fmt.Sprintf("/attach/%s/%s/%s", pod.Namespace, pod.Name, name),
		streamQuery(opts.Stdin, opts.Stdout, opts.Stderr, opts.TTY, nil))
	if err != nil {
		return nil, err
	}
	return k.remoteCommand(loc, streamproxy.Options{Stdin: opts.Stdin, Stdout: opts.Stdout, Stderr: opts.Stderr, Tty: opts.TTY}, fail), nil
}

// remoteCommand serves exec and attach as kube-apiserver does: websocket
// v5 clients are translated to SPDY toward the agent, SPDY clients are
// proxied as they are.
func (k *Kubelet) remoteCommand(loc *url.URL, opts streamproxy.Options, fail func(http.ResponseWriter, error)) http.Handler {
	return streamproxy.NewTranslatingHandler(
		k.upgradeHandler(loc, fail),
		streamproxy.NewStreamTranslatorHandler(loc, k.Transport, 0, opts),
		wsstream.IsWebSocketRequestWithStreamCloseProtocol)
}

func (k *Kubelet) portForward(ctx context.Context, parent runtime.Object, query url.Values, fail func(http.ResponseWriter, error)) (http.Handler, error) {
	pod := parent.(*corev1.Pod)
	opts, err := portForwardOptions(query)
	if err != nil {
		return nil, err
	}
	if err := streamPod(pod); err != nil {
		return nil, err
	}
	params := url.Values{}
	for _, p := range opts.Ports {
		params.Add(corev1.PortHeader, strconv.Itoa(int(p)))
	}
	loc, err := k.location(ctx, pod, fmt.Sprintf("/portForward/%s/%s", pod.Namespace, pod.Name), params)
	if err != nil {
		return nil, err
	}
	upgrade := k.upgradeHandler(loc, fail)
	// Websocket clients are tunneled: their SPDY framing rides inside
	// websocket messages to the agent's SPDY endpoint.
	return streamproxy.NewTranslatingHandler(upgrade, streamproxy.NewTunnelingHandler(upgrade),
		wsstream.IsWebSocketRequestWithTunnelingProtocol), nil
}
