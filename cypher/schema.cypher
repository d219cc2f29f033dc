// OVP graph schema (Neo4j 5). Applied by `ovp db init`; every statement is IF NOT EXISTS, so applying twice changes
// nothing. Statements are separated by semicolons at the end of a line; `//` lines are comments.

// Ids are CURIEs (HP:0000501, ICD10:H40, OMIM:…, ORPHA:…, OVP:…) and unique per kind of node.
CREATE CONSTRAINT entity_id IF NOT EXISTS FOR (n:Entity) REQUIRE n.id IS UNIQUE;
CREATE CONSTRAINT video_id IF NOT EXISTS FOR (n:Video) REQUIRE n.id IS UNIQUE;
CREATE CONSTRAINT profile_id IF NOT EXISTS FOR (n:Profile) REQUIRE n.id IS UNIQUE;
CREATE CONSTRAINT batch_id IF NOT EXISTS FOR (n:Batch) REQUIRE n.id IS UNIQUE;
// Reviewers sign in by name; API tokens are looked up by their public id (the secret part is stored hashed).
CREATE CONSTRAINT rater_name IF NOT EXISTS FOR (n:Rater) REQUIRE n.name IS UNIQUE;
CREATE CONSTRAINT rater_token_id IF NOT EXISTS FOR (n:Rater) REQUIRE n.token_id IS UNIQUE;
CREATE CONSTRAINT rating_id IF NOT EXISTS FOR (n:Rating) REQUIRE n.id IS UNIQUE;
// The one build-stamp node (kg_builder/store/build_stamp.py): processes that hold entities in memory read its stamp.
CREATE CONSTRAINT graph_build_id IF NOT EXISTS FOR (n:GraphBuild) REQUIRE n.id IS UNIQUE;

// Range indexes that the read queries filter on.
CREATE INDEX entity_source IF NOT EXISTS FOR (n:Entity) ON (n.source);
CREATE INDEX disease_profile_label IF NOT EXISTS FOR (n:Disease) ON (n.profile_label);
CREATE INDEX profile_video_latest IF NOT EXISTS FOR (n:Profile) ON (n.video_id, n.latest);
// The reconciler's periodic pass reads the batches that are still running.
CREATE INDEX batch_status IF NOT EXISTS FOR (n:Batch) ON (n.status);

// Full-text lookup over names and synonyms in Chinese and English. The cjk analyzer indexes CJK text as character
// bigrams (so 青光眼 matches inside 急性青光眼) and Latin text as lower-cased words. Lists of synonyms are not
// indexable by full-text indexes, so the builder also stores them joined, in `synonyms_text`.
CREATE FULLTEXT INDEX entity_names IF NOT EXISTS FOR (n:Entity) ON EACH [n.name, n.name_zh, n.synonyms_text]
OPTIONS {indexConfig: {`fulltext.analyzer`: 'cjk', `fulltext.eventually_consistent`: false}};

// Videos similar to a video: the fused profile embedding (fusion width 256), cosine similarity.
CREATE VECTOR INDEX video_embedding IF NOT EXISTS FOR (n:Video) ON (n.embedding)
OPTIONS {indexConfig: {`vector.dimensions`: 256, `vector.similarity_function`: 'cosine'}};

// Search by meaning: the cross-lingual sentence vector of the video's text (multilingual USE, 512-d, unit length),
// written with its profile; a Chinese query finds English videos and the reverse.
CREATE VECTOR INDEX video_text_vector IF NOT EXISTS FOR (n:Video) ON (n.text_vector)
OPTIONS {indexConfig: {`vector.dimensions`: 512, `vector.similarity_function`: 'cosine'}};
