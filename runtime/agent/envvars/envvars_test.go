package envvars

import (
	"context"
	"errors"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

func cmRef(name string, optional *bool) *corev1.ConfigMapEnvSource {
	return &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: name}, Optional: optional}
}

func secretRef(name string, optional *bool) *corev1.SecretEnvSource {
	return &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: name}, Optional: optional}
}

func cmKey(name, key string, optional *bool) *corev1.EnvVarSource {
	return &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: name}, Key: key, Optional: optional}}
}

func secretKey(name, key string, optional *bool) *corev1.EnvVarSource {
	return &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: name}, Key: key, Optional: optional}}
}

// sources is the fake most Resolve tests share; no Services.
func sources() *fakeSources {
	return &fakeSources{
		configMaps: map[string]*corev1.ConfigMap{
			"default/app-config": configMap("default", "app-config", map[string]string{
				"MODE": "prod", "HOST": "db", "1BAD": "x", "b.c-d": "ok"}),
			"default/empty": configMap("default", "empty", nil),
			"other/app-config": configMap("other", "app-config", map[string]string{
				"MODE": "other-namespace"}),
		},
		secrets: map[string]*corev1.Secret{
			"default/creds": secret("default", "creds", map[string]string{"PASSWORD": "s3cret", "MODE": "from-secret"}),
		},
	}
}

// envCase is one container of a pod in namespace default and the
// environment it should get from sources().
type envCase struct {
	name string
	c    corev1.Container
	want []string
}

func runEnvCases(t *testing.T, tests []envCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, _ := resolveOK(t, sources(), testPod(tt.c), Options{})
			if !slices.Equal(env, tt.want) {
				t.Errorf("env = %q\nwant  %q", env, tt.want)
			}
		})
	}
}

func TestResolvePrecedenceAndOrder(t *testing.T) {
	tests := []envCase{{
		name: "envFrom keys in key order, then env in order",
		c: corev1.Container{
			EnvFrom: []corev1.EnvFromSource{{ConfigMapRef: cmRef("app-config", nil)}},
			Env:     []corev1.EnvVar{{Name: "Z", Value: "1"}, {Name: "A", Value: "2"}},
		},
		want: []string{"1BAD=x", "HOST=db", "MODE=prod", "b.c-d=ok", "Z=1", "A=2"},
	}, {
		name: "later envFrom overrides earlier, keeping the first position",
		c: corev1.Container{EnvFrom: []corev1.EnvFromSource{
			{ConfigMapRef: cmRef("app-config", nil), Prefix: "X_"},
			{SecretRef: secretRef("creds", nil), Prefix: "X_"},
		}},
		want: []string{"X_1BAD=x", "X_HOST=db", "X_MODE=from-secret", "X_b.c-d=ok", "X_PASSWORD=s3cret"},
	}, {
		name: "env overrides envFrom and an earlier env of the same name",
		c: corev1.Container{
			EnvFrom: []corev1.EnvFromSource{{SecretRef: secretRef("creds", nil)}},
			Env: []corev1.EnvVar{
				{Name: "FIRST", Value: "1"}, {Name: "MODE", Value: "dev"},
				{Name: "FIRST", Value: "again"},
			},
		},
		want: []string{"MODE=dev", "PASSWORD=s3cret", "FIRST=again"},
	}, {
		name: "an env with neither value nor source is set empty",
		c:    corev1.Container{Env: []corev1.EnvVar{{Name: "E"}, {Name: "F", Value: "$(E)."}}},
		want: []string{"E=", "F=."},
	}, {
		name: "expansion sees envFrom and earlier env, not later env",
		c: corev1.Container{
			EnvFrom: []corev1.EnvFromSource{{ConfigMapRef: cmRef("app-config", nil)}},
			Env: []corev1.EnvVar{
				{Name: "URL", Value: "http://$(HOST)/$(PATH_PART)?m=$(MODE)"},
				{Name: "PATH_PART", Value: "api"},
				{Name: "AGAIN", Value: "/$(PATH_PART)"},
				{Name: "ESCAPED", Value: "$$(HOST) $(NOPE)"},
			},
		},
		want: []string{"1BAD=x", "HOST=db", "MODE=prod", "b.c-d=ok",
			"URL=http://db/$(PATH_PART)?m=prod", "PATH_PART=api", "AGAIN=/api", "ESCAPED=$(HOST) $(NOPE)"},
	}, {
		name: "values from sources are not expanded",
		c: corev1.Container{Env: []corev1.EnvVar{
			{Name: "HOST", Value: "h"},
			{Name: "K", ValueFrom: cmKey("app-config", "MODE", nil)},
		}},
		want: []string{"HOST=h", "K=prod"},
	}, {
		name: "key references",
		c: corev1.Container{Env: []corev1.EnvVar{
			{Name: "PW", ValueFrom: secretKey("creds", "PASSWORD", nil)},
			{Name: "M", ValueFrom: cmKey("app-config", "MODE", nil)},
		}},
		want: []string{"PW=s3cret", "M=prod"},
	}, {
		name: "an empty ConfigMap gives nothing",
		c:    corev1.Container{EnvFrom: []corev1.EnvFromSource{{ConfigMapRef: cmRef("empty", nil)}}},
		want: []string{},
	}}
	runEnvCases(t, tests)
}

func TestResolveOptional(t *testing.T) {
	yes, no := ptr(true), ptr(false)
	tests := []envCase{{
		name: "optional missing envFrom ConfigMap and Secret",
		c: corev1.Container{EnvFrom: []corev1.EnvFromSource{
			{ConfigMapRef: cmRef("missing", yes)},
			{SecretRef: secretRef("missing", yes)},
			{SecretRef: secretRef("creds", no)},
		}},
		want: []string{"MODE=from-secret", "PASSWORD=s3cret"},
	}, {
		name: "optional missing object or key sets nothing and keeps an earlier value",
		c: corev1.Container{
			EnvFrom: []corev1.EnvFromSource{{SecretRef: secretRef("creds", nil)}},
			Env: []corev1.EnvVar{
				{Name: "MODE", ValueFrom: cmKey("missing", "MODE", yes)},
				{Name: "PASSWORD", ValueFrom: secretKey("creds", "NOKEY", yes)},
				{Name: "A", ValueFrom: secretKey("missing", "K", yes)},
				{Name: "B", ValueFrom: cmKey("app-config", "NOKEY", yes)},
				{Name: "C", ValueFrom: cmKey("app-config", "HOST", yes)},
			},
		},
		want: []string{"MODE=from-secret", "PASSWORD=s3cret", "C=db"},
	}}
	runEnvCases(t, tests)
}

func TestResolveMissingConfig(t *testing.T) {
	tests := []struct {
		name     string
		c        corev1.Container
		msg      string
		notFound bool // also an apimachinery NotFound
	}{{
		name:     "envFrom ConfigMap",
		c:        corev1.Container{EnvFrom: []corev1.EnvFromSource{{ConfigMapRef: cmRef("nope", nil)}}},
		msg:      `configmap "nope" not found`,
		notFound: true,
	}, {
		name:     "envFrom Secret, optional false",
		c:        corev1.Container{EnvFrom: []corev1.EnvFromSource{{SecretRef: secretRef("nope", ptr(false))}}},
		msg:      `secret "nope" not found`,
		notFound: true,
	}, {
		name:     "configMapKeyRef object",
		c:        corev1.Container{Env: []corev1.EnvVar{{Name: "X", ValueFrom: cmKey("nope", "K", nil)}}},
		msg:      `configmap "nope" not found`,
		notFound: true,
	}, {
		name:     "secretKeyRef object",
		c:        corev1.Container{Env: []corev1.EnvVar{{Name: "X", ValueFrom: secretKey("nope", "K", nil)}}},
		msg:      `secret "nope" not found`,
		notFound: true,
	}, {
		name: "configMapKeyRef key",
		c:    corev1.Container{Env: []corev1.EnvVar{{Name: "X", ValueFrom: cmKey("app-config", "FOO", nil)}}},
		msg:  "couldn't find key FOO in ConfigMap default/app-config",
	}, {
		name: "secretKeyRef key",
		c:    corev1.Container{Env: []corev1.EnvVar{{Name: "X", ValueFrom: secretKey("creds", "FOO", nil)}}},
		msg:  "couldn't find key FOO in Secret default/creds",
	}, {
		name: "optional envFrom does not excuse a required key ref to the same object",
		c: corev1.Container{
			EnvFrom: []corev1.EnvFromSource{{ConfigMapRef: cmRef("nope", ptr(true))}},
			Env:     []corev1.EnvVar{{Name: "X", ValueFrom: cmKey("nope", "K", nil)}},
		},
		msg:      `configmap "nope" not found`,
		notFound: true,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := resolveErr(t, sources(), testPod(tt.c), Options{})
			if err.Error() != tt.msg {
				t.Errorf("error = %q, want %q", err, tt.msg)
			}
			if !errors.Is(err, ErrConfigNotFound) {
				t.Errorf("errors.Is(%v, ErrConfigNotFound) = false", err)
			}
			if got := apierrors.IsNotFound(err); got != tt.notFound {
				t.Errorf("apierrors.IsNotFound = %v, want %v", got, tt.notFound)
			}
		})
	}
}

func TestResolveOtherErrors(t *testing.T) {
	c := corev1.Container{EnvFrom: []corev1.EnvFromSource{{ConfigMapRef: cmRef("app-config", ptr(true))}}}

	src := sources()
	src.err = errBoom
	err := resolveErr(t, src, testPod(c), Options{})
	if !errors.Is(err, errBoom) || errors.Is(err, ErrConfigNotFound) {
		t.Errorf("Services failure: error = %v, want errBoom and not ErrConfigNotFound", err)
	}

	// Only the ConfigMap fetch fails: optional excuses NotFound, not this.
	failing := &failingConfigMaps{sources()}
	err = resolveErr(t, failing, testPod(c), Options{})
	if !errors.Is(err, errBoom) || errors.Is(err, ErrConfigNotFound) {
		t.Errorf("ConfigMap failure: error = %v, want errBoom and not ErrConfigNotFound", err)
	}

	file := corev1.Container{Env: []corev1.EnvVar{{Name: "F", ValueFrom: &corev1.EnvVarSource{
		FileKeyRef: &corev1.FileKeySelector{VolumeName: "v", Path: "env", Key: "K"}}}}}
	if err := resolveErr(t, sources(), testPod(file), Options{}); err.Error() != "env F: fileKeyRef is not supported" {
		t.Errorf("fileKeyRef: error = %q", err)
	}
}

type failingConfigMaps struct{ *fakeSources }

func (f *failingConfigMaps) ConfigMap(context.Context, string, string) (*corev1.ConfigMap, error) {
	return nil, errBoom
}

func TestResolveFetchesEachObjectOnce(t *testing.T) {
	src := sources()
	c := corev1.Container{
		EnvFrom: []corev1.EnvFromSource{{ConfigMapRef: cmRef("app-config", nil)}, {SecretRef: secretRef("creds", nil)}},
		Env: []corev1.EnvVar{
			{Name: "A", ValueFrom: cmKey("app-config", "MODE", nil)},
			{Name: "B", ValueFrom: cmKey("app-config", "HOST", nil)},
			{Name: "C", ValueFrom: secretKey("creds", "PASSWORD", nil)},
		},
	}
	resolveOK(t, src, testPod(c), Options{})
	for key, want := range map[string]int{"configmaps/default/app-config": 1, "secrets/default/creds": 1} {
		if got := src.fetches[key]; got != want {
			t.Errorf("%s fetched %d times, want %d", key, got, want)
		}
	}
}

func TestResolveUsesPodNamespace(t *testing.T) {
	pod := testPod(corev1.Container{Env: []corev1.EnvVar{{Name: "M", ValueFrom: cmKey("app-config", "MODE", nil)}}})
	pod.Namespace = "other"
	env, _ := resolveOK(t, sources(), pod, Options{})
	if want := []string{"M=other-namespace"}; !slices.Equal(env, want) {
		t.Errorf("env = %q, want %q", env, want)
	}
}

func TestResolveSkipsInvalidKeys(t *testing.T) {
	src := sources()
	src.configMaps["default/odd"] = configMap("default", "odd", map[string]string{
		"GOOD": "1", "has=equals": "2", "tab\there": "3", "": "4", "9lives": "5", "a:b": "6"})
	c := corev1.Container{EnvFrom: []corev1.EnvFromSource{
		{ConfigMapRef: cmRef("odd", nil)},
		{SecretRef: secretRef("creds", nil), Prefix: "my prefix "},
	}}
	tests := []struct {
		name    string
		opts    Options
		want    []string
		skipped []SkippedKeys
	}{{
		name: "relaxed names",
		want: []string{"9lives=5", "GOOD=1", "a:b=6", "my prefix MODE=from-secret", "my prefix PASSWORD=s3cret"},
		skipped: []SkippedKeys{{Kind: "configMap", Namespace: "default", Name: "odd",
			Keys: []string{"", "has=equals", "tab\there"}}},
	}, {
		name: "strict names",
		opts: Options{StrictEnvVarNames: true},
		want: []string{"GOOD=1"},
		skipped: []SkippedKeys{
			{Kind: "configMap", Namespace: "default", Name: "odd",
				Keys: []string{"", "9lives", "a:b", "has=equals", "tab\there"}},
			{Kind: "secret", Namespace: "default", Name: "creds",
				Keys: []string{"my prefix MODE", "my prefix PASSWORD"}},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, skipped := resolveOK(t, src, testPod(c), tt.opts)
			if !slices.Equal(env, tt.want) {
				t.Errorf("env = %q\nwant  %q", env, tt.want)
			}
			if !slices.EqualFunc(skipped, tt.skipped, func(a, b SkippedKeys) bool {
				return a.Kind == b.Kind && a.Namespace == b.Namespace && a.Name == b.Name && slices.Equal(a.Keys, b.Keys)
			}) {
				t.Errorf("skipped = %+v\nwant      %+v", skipped, tt.skipped)
			}
		})
	}
}

func TestSkippedKeysMessage(t *testing.T) {
	s := SkippedKeys{Kind: "secret", Namespace: "ns", Name: "creds", Keys: []string{"1A", "2B"}}
	want := "Keys [1A, 2B] from the EnvFrom secret ns/creds were skipped since they are considered invalid environment variable names."
	if got := s.Message(); got != want {
		t.Errorf("Message() = %q\nwant        %q", got, want)
	}
}
