/**
 * The protobuf field numbers of the Kubernetes API messages this test server decodes: every kind
 * kubectl's typed `create` commands send, and everything those messages contain. The numbers are
 * those of k8s.io/api and k8s.io/apimachinery `generated.proto` (stable: Kubernetes never reuses a
 * field number). One entry per message: `<number> <json name> <type>`, where the type is `s`
 * string, `i` integer, `b` bool, `d` double, `y` bytes (base64 in JSON), `q` Quantity, `x`
 * IntOrString, `t` Time, `D` Duration, `R` RawExtension, `F` FieldsV1, `-` ignored (a top-level
 * status, which a create never keeps), another message's name, `{T}` a map of string to T, and a
 * leading `*` for a repeated field.
 */
export const PROTOBUF_MESSAGES: Record<string, string> = {
  Deployment: '1 metadata ObjectMeta, 2 spec DeploymentSpec, 3 status -',
  Service: '1 metadata ObjectMeta, 2 spec ServiceSpec, 3 status -',
  Job: '1 metadata ObjectMeta, 2 spec JobSpec, 3 status -',
  CronJob: '1 metadata ObjectMeta, 2 spec CronJobSpec, 3 status -',
  Secret: '1 metadata ObjectMeta, 5 immutable b, 2 data {y}, 4 stringData {s}, 3 type s',
  ConfigMap: '1 metadata ObjectMeta, 4 immutable b, 2 data {s}, 3 binaryData {y}',
  Namespace: '1 metadata ObjectMeta, 2 spec NamespaceSpec, 3 status -',
  ServiceAccount:
    '1 metadata ObjectMeta, 2 secrets *ObjectReference, 3 imagePullSecrets *LocalObjectReference, 4 automountServiceAccountToken b',
  Role: '1 metadata ObjectMeta, 2 rules *PolicyRule',
  ClusterRole: '1 metadata ObjectMeta, 2 rules *PolicyRule, 3 aggregationRule AggregationRule',
  RoleBinding: '1 metadata ObjectMeta, 2 subjects *Subject, 3 roleRef RoleRef',
  ClusterRoleBinding: '1 metadata ObjectMeta, 2 subjects *Subject, 3 roleRef RoleRef',
  Ingress: '1 metadata ObjectMeta, 2 spec IngressSpec, 3 status -',
  PersistentVolumeClaim: '1 metadata ObjectMeta, 2 spec PersistentVolumeClaimSpec, 3 status -',
  StatefulSet: '1 metadata ObjectMeta, 2 spec StatefulSetSpec, 3 status -',
  DaemonSet: '1 metadata ObjectMeta, 2 spec DaemonSetSpec, 3 status -',
  ReplicaSet: '1 metadata ObjectMeta, 2 spec ReplicaSetSpec, 3 status -',
  Pod: '1 metadata ObjectMeta, 2 spec PodSpec, 3 status -',
  ObjectMeta:
    '1 name s, 2 generateName s, 3 namespace s, 4 selfLink s, 5 uid s, 6 resourceVersion s, 7 generation i, 8 creationTimestamp t, 9 deletionTimestamp t, 10 deletionGracePeriodSeconds i, 11 labels {s}, 12 annotations {s}, 13 ownerReferences *OwnerReference, 14 finalizers *s',
  DeploymentSpec:
    '1 replicas i, 2 selector LabelSelector, 3 template PodTemplateSpec, 4 strategy DeploymentStrategy, 5 minReadySeconds i, 6 revisionHistoryLimit i, 7 paused b, 9 progressDeadlineSeconds i',
  ServiceSpec:
    '1 ports *ServicePort, 2 selector {s}, 3 clusterIP s, 18 clusterIPs *s, 4 type s, 5 externalIPs *s, 7 sessionAffinity s, 8 loadBalancerIP s, 9 loadBalancerSourceRanges *s, 10 externalName s, 11 externalTrafficPolicy s, 12 healthCheckNodePort i, 13 publishNotReadyAddresses b, 14 sessionAffinityConfig SessionAffinityConfig, 19 ipFamilies *s, 17 ipFamilyPolicy s, 20 allocateLoadBalancerNodePorts b, 21 loadBalancerClass s, 22 internalTrafficPolicy s, 23 trafficDistribution s',
  JobSpec:
    '1 parallelism i, 2 completions i, 3 activeDeadlineSeconds i, 11 podFailurePolicy PodFailurePolicy, 16 successPolicy SuccessPolicy, 7 backoffLimit i, 12 backoffLimitPerIndex i, 13 maxFailedIndexes i, 4 selector LabelSelector, 5 manualSelector b, 6 template PodTemplateSpec, 8 ttlSecondsAfterFinished i, 9 completionMode s, 10 suspend b, 14 podReplacementPolicy s, 15 managedBy s',
  CronJobSpec:
    '1 schedule s, 8 timeZone s, 2 startingDeadlineSeconds i, 3 concurrencyPolicy s, 4 suspend b, 5 jobTemplate JobTemplateSpec, 6 successfulJobsHistoryLimit i, 7 failedJobsHistoryLimit i',
  NamespaceSpec: '1 finalizers *s',
  ObjectReference:
    '1 kind s, 2 namespace s, 3 name s, 4 uid s, 5 apiVersion s, 6 resourceVersion s, 7 fieldPath s',
  LocalObjectReference: '1 name s',
  PolicyRule: '1 verbs *s, 2 apiGroups *s, 3 resources *s, 4 resourceNames *s, 5 nonResourceURLs *s',
  AggregationRule: '1 clusterRoleSelectors *LabelSelector',
  Subject: '1 kind s, 2 apiGroup s, 3 name s, 4 namespace s',
  RoleRef: '1 apiGroup s, 2 kind s, 3 name s',
  IngressSpec:
    '4 ingressClassName s, 1 defaultBackend IngressBackend, 2 tls *IngressTLS, 3 rules *IngressRule',
  PersistentVolumeClaimSpec:
    '1 accessModes *s, 4 selector LabelSelector, 2 resources VolumeResourceRequirements, 3 volumeName s, 5 storageClassName s, 6 volumeMode s, 7 dataSource TypedLocalObjectReference, 8 dataSourceRef TypedObjectReference, 9 volumeAttributesClassName s',
  StatefulSetSpec:
    '1 replicas i, 2 selector LabelSelector, 3 template PodTemplateSpec, 4 volumeClaimTemplates *PersistentVolumeClaim, 5 serviceName s, 6 podManagementPolicy s, 7 updateStrategy StatefulSetUpdateStrategy, 8 revisionHistoryLimit i, 9 minReadySeconds i, 10 persistentVolumeClaimRetentionPolicy StatefulSetPersistentVolumeClaimRetentionPolicy, 11 ordinals StatefulSetOrdinals',
  DaemonSetSpec:
    '1 selector LabelSelector, 2 template PodTemplateSpec, 3 updateStrategy DaemonSetUpdateStrategy, 4 minReadySeconds i, 6 revisionHistoryLimit i',
  ReplicaSetSpec: '1 replicas i, 4 minReadySeconds i, 2 selector LabelSelector, 3 template PodTemplateSpec',
  PodSpec:
    '1 volumes *Volume, 20 initContainers *Container, 2 containers *Container, 34 ephemeralContainers *EphemeralContainer, 3 restartPolicy s, 4 terminationGracePeriodSeconds i, 5 activeDeadlineSeconds i, 6 dnsPolicy s, 7 nodeSelector {s}, 8 serviceAccountName s, 9 serviceAccount s, 21 automountServiceAccountToken b, 10 nodeName s, 11 hostNetwork b, 12 hostPID b, 13 hostIPC b, 27 shareProcessNamespace b, 14 securityContext PodSecurityContext, 15 imagePullSecrets *LocalObjectReference, 16 hostname s, 17 subdomain s, 18 affinity Affinity, 19 schedulerName s, 22 tolerations *Toleration, 23 hostAliases *HostAlias, 24 priorityClassName s, 25 priority i, 26 dnsConfig PodDNSConfig, 28 readinessGates *PodReadinessGate, 29 runtimeClassName s, 30 enableServiceLinks b, 31 preemptionPolicy s, 32 overhead {q}, 33 topologySpreadConstraints *TopologySpreadConstraint, 35 setHostnameAsFQDN b, 36 os PodOS, 37 hostUsers b, 38 schedulingGates *PodSchedulingGate, 39 resourceClaims *PodResourceClaim, 40 resources ResourceRequirements, 41 hostnameOverride s, 43 schedulingGroup PodSchedulingGroup',
  OwnerReference: '5 apiVersion s, 1 kind s, 3 name s, 4 uid s, 6 controller b, 7 blockOwnerDeletion b',
  LabelSelector: '1 matchLabels {s}, 2 matchExpressions *LabelSelectorRequirement',
  PodTemplateSpec: '1 metadata ObjectMeta, 2 spec PodSpec',
  DeploymentStrategy: '1 type s, 2 rollingUpdate RollingUpdateDeployment',
  ServicePort: '1 name s, 2 protocol s, 6 appProtocol s, 3 port i, 4 targetPort x, 5 nodePort i',
  SessionAffinityConfig: '1 clientIP ClientIPConfig',
  PodFailurePolicy: '1 rules *PodFailurePolicyRule',
  SuccessPolicy: '1 rules *SuccessPolicyRule',
  JobTemplateSpec: '1 metadata ObjectMeta, 2 spec JobSpec',
  IngressBackend: '4 service IngressServiceBackend, 3 resource TypedLocalObjectReference',
  IngressTLS: '1 hosts *s, 2 secretName s',
  IngressRule: '1 host s, 2 ingressRuleValue IngressRuleValue',
  VolumeResourceRequirements: '1 limits {q}, 2 requests {q}',
  TypedLocalObjectReference: '1 apiGroup s, 2 kind s, 3 name s',
  TypedObjectReference: '1 apiGroup s, 2 kind s, 3 name s, 4 namespace s',
  StatefulSetUpdateStrategy: '1 type s, 2 rollingUpdate RollingUpdateStatefulSetStrategy',
  StatefulSetPersistentVolumeClaimRetentionPolicy: '1 whenDeleted s, 2 whenScaled s',
  StatefulSetOrdinals: '1 start i',
  DaemonSetUpdateStrategy: '1 type s, 2 rollingUpdate RollingUpdateDaemonSet',
  Volume: '1 name s, 2 volumeSource VolumeSource',
  Container:
    '1 name s, 2 image s, 3 command *s, 4 args *s, 5 workingDir s, 6 ports *ContainerPort, 19 envFrom *EnvFromSource, 7 env *EnvVar, 8 resources ResourceRequirements, 23 resizePolicy *ContainerResizePolicy, 24 restartPolicy s, 25 restartPolicyRules *ContainerRestartRule, 9 volumeMounts *VolumeMount, 21 volumeDevices *VolumeDevice, 10 livenessProbe Probe, 11 readinessProbe Probe, 22 startupProbe Probe, 12 lifecycle Lifecycle, 13 terminationMessagePath s, 20 terminationMessagePolicy s, 14 imagePullPolicy s, 15 securityContext SecurityContext, 16 stdin b, 17 stdinOnce b, 18 tty b',
  EphemeralContainer: '1 ephemeralContainerCommon EphemeralContainerCommon, 2 targetContainerName s',
  PodSecurityContext:
    '1 seLinuxOptions SELinuxOptions, 8 windowsOptions WindowsSecurityContextOptions, 2 runAsUser i, 6 runAsGroup i, 3 runAsNonRoot b, 4 supplementalGroups *i, 12 supplementalGroupsPolicy s, 5 fsGroup i, 7 sysctls *Sysctl, 9 fsGroupChangePolicy s, 10 seccompProfile SeccompProfile, 11 appArmorProfile AppArmorProfile, 13 seLinuxChangePolicy s',
  Affinity: '1 nodeAffinity NodeAffinity, 2 podAffinity PodAffinity, 3 podAntiAffinity PodAntiAffinity',
  Toleration: '1 key s, 2 operator s, 3 value s, 4 effect s, 5 tolerationSeconds i',
  HostAlias: '1 ip s, 2 hostnames *s',
  PodDNSConfig: '1 nameservers *s, 2 searches *s, 3 options *PodDNSConfigOption',
  PodReadinessGate: '1 conditionType s',
  TopologySpreadConstraint:
    '1 maxSkew i, 2 topologyKey s, 3 whenUnsatisfiable s, 4 labelSelector LabelSelector, 5 minDomains i, 6 nodeAffinityPolicy s, 7 nodeTaintsPolicy s, 8 matchLabelKeys *s',
  PodOS: '1 name s',
  PodSchedulingGate: '1 name s',
  PodResourceClaim: '1 name s, 3 resourceClaimName s, 4 resourceClaimTemplateName s',
  ResourceRequirements: '1 limits {q}, 2 requests {q}, 3 claims *ResourceClaim',
  PodSchedulingGroup: '1 podGroupName s',
  LabelSelectorRequirement: '1 key s, 2 operator s, 3 values *s',
  RollingUpdateDeployment: '1 maxUnavailable x, 2 maxSurge x',
  ClientIPConfig: '1 timeoutSeconds i',
  PodFailurePolicyRule:
    '1 action s, 2 onExitCodes PodFailurePolicyOnExitCodesRequirement, 3 onPodConditions *PodFailurePolicyOnPodConditionsPattern',
  SuccessPolicyRule: '1 succeededIndexes s, 2 succeededCount i',
  IngressServiceBackend: '1 name s, 2 port ServiceBackendPort',
  IngressRuleValue: '1 http HTTPIngressRuleValue',
  RollingUpdateStatefulSetStrategy: '1 partition i, 2 maxUnavailable x',
  RollingUpdateDaemonSet: '1 maxUnavailable x, 2 maxSurge x',
  VolumeSource:
    '1 hostPath HostPathVolumeSource, 2 emptyDir EmptyDirVolumeSource, 3 gcePersistentDisk GCEPersistentDiskVolumeSource, 4 awsElasticBlockStore AWSElasticBlockStoreVolumeSource, 5 gitRepo GitRepoVolumeSource, 6 secret SecretVolumeSource, 7 nfs NFSVolumeSource, 8 iscsi ISCSIVolumeSource, 9 glusterfs GlusterfsVolumeSource, 10 persistentVolumeClaim PersistentVolumeClaimVolumeSource, 11 rbd RBDVolumeSource, 12 flexVolume FlexVolumeSource, 13 cinder CinderVolumeSource, 14 cephfs CephFSVolumeSource, 15 flocker FlockerVolumeSource, 16 downwardAPI DownwardAPIVolumeSource, 17 fc FCVolumeSource, 18 azureFile AzureFileVolumeSource, 19 configMap ConfigMapVolumeSource, 20 vsphereVolume VsphereVirtualDiskVolumeSource, 21 quobyte QuobyteVolumeSource, 22 azureDisk AzureDiskVolumeSource, 23 photonPersistentDisk PhotonPersistentDiskVolumeSource, 26 projected ProjectedVolumeSource, 24 portworxVolume PortworxVolumeSource, 25 scaleIO ScaleIOVolumeSource, 27 storageos StorageOSVolumeSource, 28 csi CSIVolumeSource, 29 ephemeral EphemeralVolumeSource, 30 image ImageVolumeSource',
  ContainerPort: '1 name s, 2 hostPort i, 3 containerPort i, 4 protocol s, 5 hostIP s',
  EnvFromSource: '1 prefix s, 2 configMapRef ConfigMapEnvSource, 3 secretRef SecretEnvSource',
  EnvVar: '1 name s, 2 value s, 3 valueFrom EnvVarSource',
  ContainerResizePolicy: '1 resourceName s, 2 restartPolicy s',
  ContainerRestartRule: '1 action s, 2 exitCodes ContainerRestartRuleOnExitCodes',
  VolumeMount:
    '1 name s, 2 readOnly b, 7 recursiveReadOnly s, 3 mountPath s, 4 subPath s, 5 mountPropagation s, 6 subPathExpr s',
  VolumeDevice: '1 name s, 2 devicePath s',
  Probe:
    '1 handler ProbeHandler, 2 initialDelaySeconds i, 3 timeoutSeconds i, 4 periodSeconds i, 5 successThreshold i, 6 failureThreshold i, 7 terminationGracePeriodSeconds i',
  Lifecycle: '1 postStart LifecycleHandler, 2 preStop LifecycleHandler, 3 stopSignal s',
  SecurityContext:
    '1 capabilities Capabilities, 2 privileged b, 3 seLinuxOptions SELinuxOptions, 10 windowsOptions WindowsSecurityContextOptions, 4 runAsUser i, 8 runAsGroup i, 5 runAsNonRoot b, 6 readOnlyRootFilesystem b, 7 allowPrivilegeEscalation b, 9 procMount s, 11 seccompProfile SeccompProfile, 12 appArmorProfile AppArmorProfile',
  EphemeralContainerCommon:
    '1 name s, 2 image s, 3 command *s, 4 args *s, 5 workingDir s, 6 ports *ContainerPort, 19 envFrom *EnvFromSource, 7 env *EnvVar, 8 resources ResourceRequirements, 23 resizePolicy *ContainerResizePolicy, 24 restartPolicy s, 25 restartPolicyRules *ContainerRestartRule, 9 volumeMounts *VolumeMount, 21 volumeDevices *VolumeDevice, 10 livenessProbe Probe, 11 readinessProbe Probe, 22 startupProbe Probe, 12 lifecycle Lifecycle, 13 terminationMessagePath s, 20 terminationMessagePolicy s, 14 imagePullPolicy s, 15 securityContext SecurityContext, 16 stdin b, 17 stdinOnce b, 18 tty b',
  SELinuxOptions: '1 user s, 2 role s, 3 type s, 4 level s',
  WindowsSecurityContextOptions:
    '1 gmsaCredentialSpecName s, 2 gmsaCredentialSpec s, 3 runAsUserName s, 4 hostProcess b',
  Sysctl: '1 name s, 2 value s',
  SeccompProfile: '1 type s, 2 localhostProfile s',
  AppArmorProfile: '1 type s, 2 localhostProfile s',
  NodeAffinity:
    '1 requiredDuringSchedulingIgnoredDuringExecution NodeSelector, 2 preferredDuringSchedulingIgnoredDuringExecution *PreferredSchedulingTerm',
  PodAffinity:
    '1 requiredDuringSchedulingIgnoredDuringExecution *PodAffinityTerm, 2 preferredDuringSchedulingIgnoredDuringExecution *WeightedPodAffinityTerm',
  PodAntiAffinity:
    '1 requiredDuringSchedulingIgnoredDuringExecution *PodAffinityTerm, 2 preferredDuringSchedulingIgnoredDuringExecution *WeightedPodAffinityTerm',
  PodDNSConfigOption: '1 name s, 2 value s',
  ResourceClaim: '1 name s, 2 request s',
  PodFailurePolicyOnExitCodesRequirement: '1 containerName s, 2 operator s, 3 values *i',
  PodFailurePolicyOnPodConditionsPattern: '1 type s, 2 status s',
  ServiceBackendPort: '1 name s, 2 number i',
  HTTPIngressRuleValue: '1 paths *HTTPIngressPath',
  HostPathVolumeSource: '1 path s, 2 type s',
  EmptyDirVolumeSource: '1 medium s, 2 sizeLimit q',
  GCEPersistentDiskVolumeSource: '1 pdName s, 2 fsType s, 3 partition i, 4 readOnly b',
  AWSElasticBlockStoreVolumeSource: '1 volumeID s, 2 fsType s, 3 partition i, 4 readOnly b',
  GitRepoVolumeSource: '1 repository s, 2 revision s, 3 directory s',
  SecretVolumeSource: '1 secretName s, 2 items *KeyToPath, 3 defaultMode i, 4 optional b',
  NFSVolumeSource: '1 server s, 2 path s, 3 readOnly b',
  ISCSIVolumeSource:
    '1 targetPortal s, 2 iqn s, 3 lun i, 4 iscsiInterface s, 5 fsType s, 6 readOnly b, 7 portals *s, 8 chapAuthDiscovery b, 11 chapAuthSession b, 10 secretRef LocalObjectReference, 12 initiatorName s',
  GlusterfsVolumeSource: '1 endpoints s, 2 path s, 3 readOnly b',
  PersistentVolumeClaimVolumeSource: '1 claimName s, 2 readOnly b',
  RBDVolumeSource:
    '1 monitors *s, 2 image s, 3 fsType s, 4 pool s, 5 user s, 6 keyring s, 7 secretRef LocalObjectReference, 8 readOnly b',
  FlexVolumeSource: '1 driver s, 2 fsType s, 3 secretRef LocalObjectReference, 4 readOnly b, 5 options {s}',
  CinderVolumeSource: '1 volumeID s, 2 fsType s, 3 readOnly b, 4 secretRef LocalObjectReference',
  CephFSVolumeSource:
    '1 monitors *s, 2 path s, 3 user s, 4 secretFile s, 5 secretRef LocalObjectReference, 6 readOnly b',
  FlockerVolumeSource: '1 datasetName s, 2 datasetUUID s',
  DownwardAPIVolumeSource: '1 items *DownwardAPIVolumeFile, 2 defaultMode i',
  FCVolumeSource: '1 targetWWNs *s, 2 lun i, 3 fsType s, 4 readOnly b, 5 wwids *s',
  AzureFileVolumeSource: '1 secretName s, 2 shareName s, 3 readOnly b',
  ConfigMapVolumeSource:
    '1 localObjectReference LocalObjectReference, 2 items *KeyToPath, 3 defaultMode i, 4 optional b',
  VsphereVirtualDiskVolumeSource: '1 volumePath s, 2 fsType s, 3 storagePolicyName s, 4 storagePolicyID s',
  QuobyteVolumeSource: '1 registry s, 2 volume s, 3 readOnly b, 4 user s, 5 group s, 6 tenant s',
  AzureDiskVolumeSource: '1 diskName s, 2 diskURI s, 3 cachingMode s, 4 fsType s, 5 readOnly b, 6 kind s',
  PhotonPersistentDiskVolumeSource: '1 pdID s, 2 fsType s',
  ProjectedVolumeSource: '1 sources *VolumeProjection, 2 defaultMode i',
  PortworxVolumeSource: '1 volumeID s, 2 fsType s, 3 readOnly b',
  ScaleIOVolumeSource:
    '1 gateway s, 2 system s, 3 secretRef LocalObjectReference, 4 sslEnabled b, 5 protectionDomain s, 6 storagePool s, 7 storageMode s, 8 volumeName s, 9 fsType s, 10 readOnly b',
  StorageOSVolumeSource:
    '1 volumeName s, 2 volumeNamespace s, 3 fsType s, 4 readOnly b, 5 secretRef LocalObjectReference',
  CSIVolumeSource:
    '1 driver s, 2 readOnly b, 3 fsType s, 4 volumeAttributes {s}, 5 nodePublishSecretRef LocalObjectReference',
  EphemeralVolumeSource: '1 volumeClaimTemplate PersistentVolumeClaimTemplate',
  ImageVolumeSource: '1 reference s, 2 pullPolicy s',
  ConfigMapEnvSource: '1 localObjectReference LocalObjectReference, 2 optional b',
  SecretEnvSource: '1 localObjectReference LocalObjectReference, 2 optional b',
  EnvVarSource:
    '1 fieldRef ObjectFieldSelector, 2 resourceFieldRef ResourceFieldSelector, 3 configMapKeyRef ConfigMapKeySelector, 4 secretKeyRef SecretKeySelector, 5 fileKeyRef FileKeySelector',
  ContainerRestartRuleOnExitCodes: '1 operator s, 2 values *i',
  ProbeHandler: '1 exec ExecAction, 2 httpGet HTTPGetAction, 3 tcpSocket TCPSocketAction, 4 grpc GRPCAction',
  LifecycleHandler:
    '1 exec ExecAction, 2 httpGet HTTPGetAction, 3 tcpSocket TCPSocketAction, 4 sleep SleepAction',
  Capabilities: '1 add *s, 2 drop *s',
  NodeSelector: '1 nodeSelectorTerms *NodeSelectorTerm',
  PreferredSchedulingTerm: '1 weight i, 2 preference NodeSelectorTerm',
  PodAffinityTerm:
    '1 labelSelector LabelSelector, 2 namespaces *s, 3 topologyKey s, 4 namespaceSelector LabelSelector, 5 matchLabelKeys *s, 6 mismatchLabelKeys *s',
  WeightedPodAffinityTerm: '1 weight i, 2 podAffinityTerm PodAffinityTerm',
  HTTPIngressPath: '1 path s, 3 pathType s, 2 backend IngressBackend',
  KeyToPath: '1 key s, 2 path s, 3 mode i',
  DownwardAPIVolumeFile:
    '1 path s, 2 fieldRef ObjectFieldSelector, 3 resourceFieldRef ResourceFieldSelector, 4 mode i',
  VolumeProjection:
    '1 secret SecretProjection, 2 downwardAPI DownwardAPIProjection, 3 configMap ConfigMapProjection, 4 serviceAccountToken ServiceAccountTokenProjection, 5 clusterTrustBundle ClusterTrustBundleProjection, 6 podCertificate PodCertificateProjection',
  PersistentVolumeClaimTemplate: '1 metadata ObjectMeta, 2 spec PersistentVolumeClaimSpec',
  ObjectFieldSelector: '1 apiVersion s, 2 fieldPath s',
  ResourceFieldSelector: '1 containerName s, 2 resource s, 3 divisor q',
  ConfigMapKeySelector: '1 localObjectReference LocalObjectReference, 2 key s, 3 optional b',
  SecretKeySelector: '1 localObjectReference LocalObjectReference, 2 key s, 3 optional b',
  FileKeySelector: '1 volumeName s, 2 path s, 3 key s, 4 optional b',
  ExecAction: '1 command *s',
  HTTPGetAction: '1 path s, 2 port x, 3 host s, 4 scheme s, 5 httpHeaders *HTTPHeader',
  TCPSocketAction: '1 port x, 2 host s',
  GRPCAction: '1 port i, 2 service s',
  SleepAction: '1 seconds i',
  NodeSelectorTerm: '1 matchExpressions *NodeSelectorRequirement, 2 matchFields *NodeSelectorRequirement',
  SecretProjection: '1 localObjectReference LocalObjectReference, 2 items *KeyToPath, 4 optional b',
  DownwardAPIProjection: '1 items *DownwardAPIVolumeFile',
  ConfigMapProjection: '1 localObjectReference LocalObjectReference, 2 items *KeyToPath, 4 optional b',
  ServiceAccountTokenProjection: '1 audience s, 2 expirationSeconds i, 3 path s',
  ClusterTrustBundleProjection:
    '1 name s, 2 signerName s, 3 labelSelector LabelSelector, 5 optional b, 4 path s',
  PodCertificateProjection:
    '1 signerName s, 2 keyType s, 3 maxExpirationSeconds i, 4 credentialBundlePath s, 5 keyPath s, 6 certificateChainPath s, 7 userAnnotations {s}',
  HTTPHeader: '1 name s, 2 value s',
  NodeSelectorRequirement: '1 key s, 2 operator s, 3 values *s',
};
