// name: entity_neighbourhood
// description: An entity's direct neighbours in the knowledge graph (IS_A, HAS_PHENOTYPE, MAPS_TO, either direction).
// param: entity_id id - the entity (e.g. OVP:glaucoma or HP:0000501)
// param: limit int[1..500] 50 how many neighbours to return

MATCH (e:Entity {id: $entity_id})
// Knowledge-graph edges only: mentions by videos are not part of the terminology.
MATCH (e)-[r:IS_A|HAS_PHENOTYPE|MAPS_TO]-(n:Entity)
RETURN type(r) AS relationship,
       // 'out' when the edge starts at the entity (e IS_A n: n is a parent), 'in' otherwise
       CASE WHEN startNode(r) = e THEN 'out' ELSE 'in' END AS direction,
       n.id AS id, n.name AS name, n.name_zh AS name_zh,
       // the kind label, without the shared :Entity
       [l IN labels(n) WHERE l <> 'Entity'][0] AS kind,
       r.frequency AS frequency
ORDER BY relationship, direction, id
LIMIT $limit
