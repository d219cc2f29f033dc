// name: phenotype_diseases
// description: Diseases annotated with a phenotype or one of its sub-phenotypes (up to 3 IS_A levels below), by how many of those they have.
// param: phenotype_id id - the phenotype (e.g. HP:0000501 Glaucoma, HP:0000545 Myopia)
// param: limit int[1..200] 25 how many diseases to return

MATCH (p:Entity:Phenotype {id: $phenotype_id})
// The phenotype itself and its descendants: a disease with "juvenile myopia" also has myopia. The depth is fixed
// (variable-length bounds cannot be parameters) and small, because HPO's eye subtree is shallow.
MATCH (sub:Phenotype)-[:IS_A*0..3]->(p)
MATCH (d:Disease)-[h:HAS_PHENOTYPE]->(sub)
WITH d, collect(DISTINCT sub.id) AS via, collect(DISTINCT h.frequency) AS frequencies
RETURN d.id AS id, d.name AS name, d.name_zh AS name_zh, size(via) AS matched, via,
       [f IN frequencies WHERE f IS NOT NULL] AS frequencies
ORDER BY matched DESC, id
LIMIT $limit
