@cluster_only
Feature: What only a real cluster can prove
  The stack as kustomize deploys it: pods that start through their own probes, a NAS that must be there, a database
  that outlives its pod, and nothing but Immich open to the network. These scenarios need a Kubernetes cluster.

  Scenario: Every Deployment of the stack becomes Available through its probes
    Then every Deployment of the stack has all its pods Ready

  Scenario: Only Immich is reachable from outside the cluster
    When the suite lists the node ports of every Service
    Then immich-server has its NodePort
    And the origin proxy, Postgres, Redis and machine learning have no node port

  Scenario: The tunnel delivers to the origin proxy and nowhere else
    Then the tunnel's only destination is the origin proxy Service

  Scenario: A photo survives the loss of the database pod, then of the server pod
    Given the suite uploaded a new photo over the LAN
    When the Postgres pod is deleted and a new one is Ready
    And the immich-server pod is deleted and a new one is Ready
    Then Immich still has the photo with the same checksum
    And the file Immich reports lies on the NAS with the same SHA-1, byte for byte

  Scenario: Without the NAS, Immich does not start and writes nothing in its place
    When the NAS library is unmounted and immich-server restarts
    Then immich-server does not become Ready and nothing is written where the NAS belongs
    When the NAS library is mounted again
    Then immich-server becomes Ready again

  Scenario: A privileged pod is refused in the stack's namespace
    When the suite asks the cluster to admit a privileged pod into the stack's namespace
    Then the cluster refuses it, naming the stack's Pod Security policy

  Scenario Outline: Network policies allow <source> to reach <destination> only as designed
    Given the cluster enforces NetworkPolicies
    When <source> connects to <destination>
    Then the connection is <verdict>

    Examples:
      | source           | destination      | verdict |
      | the tunnel       | the origin proxy | allowed |
      | the origin proxy | Immich           | allowed |
      | the tunnel       | Immich           | denied  |
      | the tunnel       | Postgres         | denied  |
      | Immich           | Postgres         | allowed |
      | Immich           | Redis            | allowed |
      | Immich           | machine learning | allowed |
      | Immich           | the origin proxy | denied  |
