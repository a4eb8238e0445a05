"""Default allow-lists: the identities and add-ons every EKS cluster runs, so a normal cluster is quiet.

Kept deliberately narrow: control-plane identities (eks:*, system:kube-*), the controllers that act on
users' behalf (a Deployment's ReplicaSet and Pods are created by kube-system controllers — the user's
own request is what the rules judge), and the images of AWS-managed add-ons.
"""

from __future__ import annotations

from eksight.core.rules.base import AllowList

CONTROL_PLANE = AllowList(principal_kinds=("eks_system", "k8s_system"))

KUBE_SYSTEM_CONTROLLERS = AllowList(
    principals=(
        "sa:kube-system/*-controller",
        "sa:kube-system/generic-garbage-collector",
        "sa:kube-system/clusterrole-aggregation-controller",
        "sa:kube-system/namespace-controller",
        "sa:kube-system/horizontal-pod-autoscaler",
        "sa:kube-system/disruption-controller",
        "sa:kube-system/resourcequota-controller",
        "sa:kube-system/persistent-volume-binder",
        "sa:kube-system/attachdetach-controller",
        "sa:kube-system/pvc-protection-controller",
        "sa:kube-system/pv-protection-controller",
        "sa:kube-system/ttl-after-finished-controller",
        "sa:kube-system/root-ca-cert-publisher",
        "sa:kube-system/service-account-controller",
        "sa:kube-system/token-cleaner",
        "sa:kube-system/bootstrap-signer",
    )
)

# Images of AWS-managed EKS add-ons (VPC CNI, kube-proxy, CoreDNS, EBS/EFS CSI, Pod Identity agent, ...):
# the EKS add-on registries in every partition and EKS Distro's public images.
EKS_ADDON_IMAGES = AllowList(
    images=(
        "602401143452.dkr.ecr.*.amazonaws.com/*",
        "*.dkr.ecr.*.amazonaws.com/eks/*",
        "151742754352.dkr.ecr.*.amazonaws.com/*",
        "013241004608.dkr.ecr.us-gov-*.amazonaws.com/*",
        "961992271922.dkr.ecr.cn-*.amazonaws.com.cn/*",
        "public.ecr.aws/eks-distro/*",
        "public.ecr.aws/eks/*",
    )
)

SYSTEM = CONTROL_PLANE.extend(KUBE_SYSTEM_CONTROLLERS)
