package e2e

import (
	"strconv"
	"strings"
)

// busyboxPod is the manifest of a pod of one busybox container that runs
// command (a YAML flow sequence), with a grace period of one second.
// containerFields, if any, are further fields of the container, each line
// indented by four spaces.
func busyboxPod(name, container, command, containerFields string) string {
	return `apiVersion: v1
kind: Pod
metadata:
  name: ` + name + `
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: ` + container + `
    image: ` + busyboxImage + `
    command: ` + command + `
` + containerFields
}

// sleepHour is the command of a container that only stays up.
const sleepHour = `["sleep", "3600"]`

// helloDeployment is the manifest of a Deployment "hello" of replicas
// hello servers, on the image already present on the node.
func helloDeployment(replicas int) string {
	return `apiVersion: apps/v1
kind: Deployment
metadata:
  name: hello
spec:
  selector:
    matchLabels:
      app: hello
  replicas: ` + strconv.Itoa(replicas) + `
  template:
    metadata:
      labels:
        app: hello
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: hello
        image: ` + helloImage + `
        imagePullPolicy: IfNotPresent
        ports:
        - containerPort: 8080
`
}

// manifests joins manifests into one multi-document YAML stream.
func manifests(docs ...string) string {
	return strings.Join(docs, "---\n")
}
